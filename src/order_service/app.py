"""The FastAPI application: wiring of settings, database, clients and provisioner."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from order_service import health, housekeeping
from order_service.access import credentials, server_router
from order_service.access import router as access_router
from order_service.access.regions import RegionRules
from order_service.accounts import router as accounts_router
from order_service.accounts.checker import AccountChecker
from order_service.accounts.clients import AccountClients
from order_service.accounts.defaults import ensure_default_account
from order_service.accounts.do_catalog import DoCatalog
from order_service.actions import router as actions_router
from order_service.admission import PaymentAdmission
from order_service.auth import JWTVerifier
from order_service.background import Background, Transports, start_background
from order_service.background_thread import BackgroundThread
from order_service.catalog.client import CatalogClient
from order_service.config import Settings
from order_service.cors import add_cors
from order_service.db import (
    create_engine,
    create_read_pool,
    create_sessionmaker,
    dispose_when_returned,
)
from order_service.docs import install_docs
from order_service.errors import DATABASE_DOWN, install_error_handlers
from order_service.events import router as events_router
from order_service.events.retention import purge_old_events
from order_service.lifecycle import router as lifecycle_router
from order_service.middleware import RequestContextMiddleware
from order_service.orders import internal_router, router
from order_service.orders.creation import ServerRules
from order_service.orders.idempotency import IdempotencyStore
from order_service.plan_changes import router as plan_changes_router
from order_service.reads_first import INFO_KEY, ReadsFirst, YieldingSession
from order_service.renewals import router as renewals_router
from order_service.secret_box import secret_box

logger = logging.getLogger("order_service")

TITLE = "Order & Provisioning Service"
API_DESCRIPTION = """
Orders VPS plans for users (bearer JWT) and lets operators (X-API-Key) mark
payments, cancel and retry. Paid orders are provisioned as DigitalOcean
droplets in the background. Every error is `{"error": {"code", "message", "details"?}}`.
"""


async def _start_duties(
    settings: Settings, engine: AsyncEngine, transports: Transports, reads: ReadsFirst | None
) -> Background | BackgroundThread:
    """The background duties. On PostgreSQL they get a pool of their own (a burst of
    provisioning, action or delivery writes never takes a connection a request
    waits for) and, by default, a loop of their own (background_thread.py).
    SQLite shares the one engine (one writer anyway, one connection for an
    in-memory database) and the request loop. With `reads`, their statements
    yield to the GETs in flight (reads_first.py), but for the event relay's and the
    webhook deliveries': events reach the feed within milliseconds of their commit,
    and that work is small."""

    async def start_on(bind: AsyncEngine, own_engine: AsyncEngine | None = None) -> Background:
        yielding = (
            create_sessionmaker(bind, session_class=YieldingSession, info={INFO_KEY: reads})
            if reads is not None
            else create_sessionmaker(bind)
        )
        return await start_background(
            settings,
            yielding,
            transports,
            own_engine=own_engine,
            event_sessionmaker=create_sessionmaker(bind),
        )

    if settings.is_sqlite:
        return await start_on(engine)

    async def start() -> Background:
        own = create_engine(settings.database_url, pool_size=settings.database_background_pool_size)
        return await start_on(own, own_engine=own)

    if not settings.background_thread:
        return await start()
    thread = BackgroundThread(start)
    await thread.start()
    return thread


def create_app(
    settings: Settings,
    *,
    catalog_transport: httpx.AsyncBaseTransport | None = None,
    digitalocean_transport: httpx.AsyncBaseTransport | None = None,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
    start_provisioner: bool | None = None,
) -> FastAPI:
    """Build the app. Transports let tests route outside HTTP to in-process fakes.

    `start_provisioner=False` runs the API alone (no background duty at all);
    otherwise each duty runs as its setting says (background.py).
    """
    # GETs counted at the door; payments and duties yield to them (reads_first.py).
    reads_first = ReadsFirst() if settings.yield_to_reads else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        reads, writes = settings.request_pool_split
        engine = create_engine(settings.database_url, pool_size=writes)
        sessionmaker = create_sessionmaker(engine, session_class=YieldingSession)
        read_pool = await create_read_pool(engine, reads)
        catalog = CatalogClient(
            settings.catalog_service_url,
            timeout_ms=settings.catalog_service_timeout_ms,
            transport=catalog_transport,
        )
        app.state.engine = engine
        app.state.sessionmaker = sessionmaker
        app.state.read_pool = read_pool
        app.state.catalog = catalog
        app.state.idempotency = IdempotencyStore(sessionmaker)
        # Best effort: a database down at start-up keeps /ready at 503, not the process
        # from starting; the account checker puts `default` back once it answers.
        with contextlib.suppress(*DATABASE_DOWN):
            await ensure_default_account(sessionmaker)
        # The API's own DO clients (account checks, DO's region and size lists), one
        # budget per account shared with every process; the duties have theirs.
        app.state.accounts = AccountClients(settings, sessionmaker, digitalocean_transport)
        app.state.account_checker = AccountChecker(
            app.state.accounts, settings.digitalocean_account_check_interval
        )
        app.state.do_catalog = DoCatalog(app.state.accounts, settings.digitalocean_catalog_ttl)
        # What an order's hostname, region and access are checked against (SPEC section 14).
        app.state.server_rules = ServerRules(
            RegionRules(
                app.state.do_catalog,
                settings.digitalocean_default_region,
                settings.digitalocean_regions,
            ),
            can_keep_passwords=app.state.secret_box is not None,
        )
        transports = Transports(
            digitalocean=digitalocean_transport,
            webhooks=webhook_transport,
            catalog=catalog_transport,
        )
        background: Background | BackgroundThread = Background()
        if start_provisioner is not False:
            background = await _start_duties(settings, engine, transports, reads_first)
        app.state.background = background
        try:
            old_events = partial(purge_old_events, sessionmaker, settings.event_retention)
            expired_passwords = partial(
                credentials.purge_expired, sessionmaker, settings.credentials_ttl
            )
            purges = [
                ("old event(s) and finished webhook deliveries", old_events),
                ("first-access password(s) past CREDENTIALS_TTL", expired_passwords),
            ]
            async with housekeeping.running(app.state.idempotency, purges):
                yield
        finally:
            await background.stop()
            await app.state.accounts.aclose()
            await catalog.aclose()
            if read_pool is not None:
                await read_pool.close()
            await dispose_when_returned(engine)

    app = FastAPI(
        title=TITLE,
        version="1.0.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        # Served by install_docs from the package, not from a CDN.
        docs_url=None,
        redoc_url=None,
        openapi_tags=[
            {"name": "orders", "description": "A user's own orders (bearer JWT)"},
            {"name": "ssh-keys", "description": "A user's own SSH keys (bearer JWT)"},
            {"name": "internal", "description": "Operators and the ops bot (X-API-Key)"},
            {"name": "health", "description": "Liveness and readiness"},
        ],
    )
    app.state.settings = settings
    app.state.jwt_verifier = JWTVerifier(settings)
    app.state.secret_box = secret_box(settings)
    app.state.do_transport = digitalocean_transport
    install_error_handlers(app)
    app.include_router(router.router)
    app.include_router(internal_router.router)
    app.include_router(lifecycle_router.router)
    app.include_router(lifecycle_router.internal_router)
    app.include_router(renewals_router.router)
    app.include_router(renewals_router.internal_router)
    app.include_router(plan_changes_router.router)
    app.include_router(plan_changes_router.internal_router)
    app.include_router(actions_router.router)
    app.include_router(actions_router.internal_router)
    app.include_router(events_router.router)
    app.include_router(access_router.router)
    app.include_router(server_router.router)
    app.include_router(accounts_router.router)
    app.include_router(health.router)
    install_docs(app, title=TITLE)
    # Inside the request middleware: a waiting payment has its request id, its
    # access log line (the wait included) and the body limit.
    app.add_middleware(
        PaymentAdmission,
        path=internal_router.PAYMENT_STATUS_PATH,
        concurrency=settings.payment_concurrency,
        reads=reads_first,
    )
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    add_cors(app, settings.cors_origin_list)
    return app


def app_factory() -> Any:
    """`serve`: the API and the background duties
    (`uvicorn --factory order_service.app:app_factory`)."""
    return _factory(duties=True)


def api_only_factory() -> Any:
    """`serve --no-duties`: the API alone, no background duty at all
    (`uvicorn --factory order_service.app:api_only_factory`).

    The role is the import string itself, so every `--workers` process that
    uvicorn spawns builds the same app, and nothing (no environment variable)
    is left behind for a child process to inherit.
    """
    return _factory(duties=False)


def _factory(*, duties: bool) -> Any:
    from order_service.config import load_settings
    from order_service.logging_setup import configure_logging

    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    app = create_app(settings, start_provisioner=None if duties else False)
    # Everything built so far (modules, SQLAlchemy metadata, FastAPI's routes and
    # models) lives as long as the process: keep it out of the cyclic GC, whose
    # full collections otherwise walk it all and stall requests (the p99 tail).
    gc.collect()
    gc.freeze()
    return app
