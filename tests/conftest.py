"""Test-wide fixtures: the database of the run, settings, tokens, the app and a client."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

import order_service.models  # noqa: F401  (every table, for clean_db)
from order_service.config import Settings, load_settings
from order_service.db import Base, create_engine
from tests.database import TestDatabase, choose_database

JWT_SECRET = "test-secret-that-is-long-enough-for-hs256"
API_KEY = "test-internal-api-key"
# A Fernet key for the tests only: orders without SSH keys (access PASSWORD) need
# SECRETS_KEY, as DO tokens added through the API do (SPEC sections 2, 14).
SECRETS_KEY = "dGVzdC1vbmx5LXNlY3JldHMta2V5LTAxMjM0NTY3ODk="

pytest_plugins = ["tests.watchdog"]

_DATABASE: TestDatabase | None = None
_SKIPPED_FOR_SQLITE: list[str] = []


def _database() -> TestDatabase:
    global _DATABASE
    if _DATABASE is None:
        _DATABASE = choose_database()
        from order_service.migrate import upgrade

        upgrade(_DATABASE.url)
    return _DATABASE


def pytest_report_header(config: pytest.Config) -> str:
    database = _database()
    return f"database: {database.source} -> {_redact(database.url)}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _database().is_postgres:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (row locks and real concurrency)")
    for item in items:
        if item.get_closest_marker("postgres_only"):
            item.add_marker(skip)
            _SKIPPED_FOR_SQLITE.append(item.nodeid)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    database = _database()
    terminalreporter.write_sep("=", f"database used: {database.source}")
    if _SKIPPED_FOR_SQLITE:
        terminalreporter.write_line(
            f"!!! SQLite run: {len(_SKIPPED_FOR_SQLITE)} PostgreSQL-only tests were SKIPPED:",
            yellow=True,
            bold=True,
        )
        for nodeid in _SKIPPED_FOR_SQLITE:
            terminalreporter.write_line(f"!!!   {nodeid}", yellow=True)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _DATABASE is not None:
        _DATABASE.close()


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':')[0]}@{host}"
    return url


@pytest.fixture(autouse=True)
def _real_time_after_each_test() -> Any:
    """A test that moved the one clock (order_service.clock) leaves real time behind."""
    yield
    from order_service import clock

    clock.reset()


@pytest.fixture(scope="session")
def database() -> TestDatabase:
    return _database()


@pytest.fixture(scope="session")
def is_postgres(database: TestDatabase) -> bool:
    return database.is_postgres


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "jwt_algorithm": "HS256",
        "jwt_secret": JWT_SECRET,
        "internal_api_key": API_KEY,
        "catalog_service_url": "http://catalog.test",
        "digitalocean_api_url": "http://digitalocean.test",
        "digitalocean_api_token": "fake-do-token",
        "secrets_key": SECRETS_KEY,
        "provisioning_poll_interval_ms": 50,
        "provisioning_max_attempts": 100,
        "_env_file": None,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def settings(database: TestDatabase) -> Settings:
    return make_settings(database.url)


def make_token(sub: str, *, ttl: int = 600, secret: str = JWT_SECRET, **claims: Any) -> str:
    now = int(time.time())
    payload = {"sub": sub, "iat": now, "exp": now + ttl, **claims}
    return jwt.encode(payload, secret, algorithm="HS256")


def auth(sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(sub)}"}


INTERNAL = {"X-API-Key": API_KEY}


@pytest.fixture(scope="session")
async def engine(database: TestDatabase) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database.url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def clean_db(engine: AsyncEngine) -> AsyncIterator[None]:
    """Each test starts from empty tables (children first, for the foreign keys)."""
    async with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            await connection.execute(delete(table))
    yield


@pytest.fixture
def fast_do_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """DO clients built by the accounts (in this process) retry a 5xx with waits of
    10-20 ms instead of 0.5-8 s: the same retries, counted by the fake, without the
    seconds. For tests where "DO is down" is a run of 5xx, not the backoff itself."""
    import functools

    from order_service.accounts import clients
    from order_service.provisioning.digitalocean import DigitalOceanClient

    monkeypatch.setattr(
        clients,
        "DigitalOceanClient",
        functools.partial(DigitalOceanClient, retry_initial_s=0.01, retry_max_s=0.02),
    )


@pytest.fixture
def catalog_app() -> Any:
    from mocks.catalog_service import create_app

    return create_app()


@pytest.fixture
async def app(settings: Settings, catalog_app: Any, clean_db: None) -> AsyncIterator[Any]:
    """The service with the mock catalog behind httpx's ASGI transport, no provisioner."""
    from order_service.app import create_app

    application = create_app(
        settings,
        catalog_transport=httpx.ASGITransport(app=catalog_app),
        start_provisioner=False,
    )
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://order-service") as c:
        yield c
