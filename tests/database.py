"""Which database the test run uses, in the order the developers' guide asks for.

1. TEST_DATABASE_URL, when set (CI sets it to a fresh database).
2. A PostgreSQL container from testcontainers, when a Docker engine answers.
3. A PostgreSQL answering on 127.0.0.1:5432: a fresh database is created for
   the run and dropped afterwards.
4. SQLite in a temporary file; PostgreSQL-only tests are then skipped, loudly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class TestDatabase:
    __test__ = False  # a fixture value, not a test class
    url: str
    source: str
    cleanup: list[Callable[[], None]] = field(default_factory=list)

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith("postgresql")

    def close(self) -> None:
        for step in reversed(self.cleanup):
            with contextlib.suppress(Exception):
                step()


def choose_database() -> TestDatabase:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return TestDatabase(url, "TEST_DATABASE_URL")
    database = _from_testcontainers() or _from_local_postgres()
    if database is not None:
        return database
    path = os.path.join(tempfile.mkdtemp(prefix="order-service-tests-"), "test.db")
    return TestDatabase(f"sqlite+aiosqlite:///{path}", "SQLite (no PostgreSQL found)")


def _from_testcontainers() -> TestDatabase | None:
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception:
        return None
    from testcontainers.postgres import PostgresContainer

    container = PostgresContainer("postgres:16-alpine", driver="asyncpg")
    container.start()
    database = TestDatabase(container.get_connection_url(), "testcontainers PostgreSQL")
    database.cleanup.append(container.stop)
    return database


def _from_local_postgres() -> TestDatabase | None:
    with socket.socket() as probe:
        probe.settimeout(1)
        if probe.connect_ex(("127.0.0.1", 5432)) != 0:
            return None
    name = f"order_service_test_{uuid.uuid4().hex[:10]}"
    user = os.environ.get("PGUSER", "postgres")
    admin_dsn = f"postgresql://{user}@127.0.0.1:5432/postgres"
    try:
        asyncio.run(admin_execute(admin_dsn, f'CREATE DATABASE "{name}"'))
    except Exception:
        return None
    database = TestDatabase(
        f"postgresql+asyncpg://{user}@127.0.0.1:5432/{name}", "PostgreSQL on 127.0.0.1:5432"
    )
    database.cleanup.append(
        lambda: asyncio.run(
            admin_execute(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        )
    )
    return database


async def admin_execute(dsn: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(dsn, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()
