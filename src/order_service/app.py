"""The FastAPI application: wiring of settings, database, clients and provisioner."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from order_service import health, housekeeping
from order_service.auth import JWTVerifier
from order_service.catalog.client import CatalogClient
from order_service.config import Settings
from order_service.db import create_engine, create_sessionmaker
from order_service.errors import install_error_handlers
from order_service.middleware import RequestContextMiddleware
from order_service.orders import internal_router, router
from order_service.orders.idempotency import IdempotencyStore

logger = logging.getLogger("order_service")

API_DESCRIPTION = """
Orders VPS plans for users (bearer JWT) and lets operators (X-API-Key) mark
payments, cancel and retry. Paid orders are provisioned as DigitalOcean
droplets in the background. Every error is `{"error": {"code", "message", "details"?}}`.
"""


def create_app(
    settings: Settings,
    *,
    catalog_transport: httpx.AsyncBaseTransport | None = None,
    digitalocean_transport: httpx.AsyncBaseTransport | None = None,
    start_provisioner: bool | None = None,
) -> FastAPI:
    """Build the app. Transports let tests route outside HTTP to in-process fakes."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
        sessionmaker = create_sessionmaker(engine)
        catalog = CatalogClient(
            settings.catalog_service_url,
            timeout_ms=settings.catalog_service_timeout_ms,
            transport=catalog_transport,
        )
        app.state.engine = engine
        app.state.sessionmaker = sessionmaker
        app.state.catalog = catalog
        app.state.idempotency = IdempotencyStore(sessionmaker)
        app.state.provisioner = None
        run_provisioner = (
            settings.provisioning_enabled if start_provisioner is None else start_provisioner
        )
        if run_provisioner:
            from order_service.provisioning.runtime import start_provisioner as start

            app.state.provisioner = await start(settings, sessionmaker, digitalocean_transport)
        try:
            async with housekeeping.running(app.state.idempotency):
                yield
        finally:
            if app.state.provisioner is not None:
                await app.state.provisioner.stop()
            await catalog.aclose()
            await engine.dispose()

    app = FastAPI(
        title="Order & Provisioning Service",
        version="1.0.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "orders", "description": "A user's own orders (bearer JWT)"},
            {"name": "internal", "description": "Operators and the ops bot (X-API-Key)"},
            {"name": "health", "description": "Liveness and readiness"},
        ],
    )
    app.state.settings = settings
    app.state.jwt_verifier = JWTVerifier(settings)
    app.state.provisioner = None
    install_error_handlers(app)
    app.include_router(router.router)
    app.include_router(internal_router.router)
    app.include_router(health.router)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    return app


def app_factory() -> Any:
    """Entry point for `uvicorn --factory order_service.app:app_factory`."""
    from order_service.config import load_settings
    from order_service.logging_setup import configure_logging

    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    app = create_app(settings)
    # Everything built so far (modules, SQLAlchemy metadata, FastAPI's routes and
    # models) lives as long as the process: keep it out of the cyclic GC, whose
    # full collections otherwise walk it all and stall requests (the p99 tail).
    gc.collect()
    gc.freeze()
    return app
