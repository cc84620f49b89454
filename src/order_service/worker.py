"""`order-service worker`: the background duties alone, with health and metrics on WORKER_PORT.

The duties are the ones `serve` runs (background.py: provisioning, server
actions, the lifecycle scan, the event relay, webhook deliveries, each behind
the same setting), split with every other process on the database as usual
(SPEC section 12). Here they are the whole process: one event loop, their own
pool of DATABASE_BACKGROUND_POOL_SIZE connections, no request to yield to (so
YIELD_TO_READS and BACKGROUND_THREAD do not apply).

Beside them a small HTTP server answers `/api/v1/health`, `/api/v1/health/ready`
and `/metrics` (health.py's routes; the metrics are this process's, the duties'
among them). Its readiness check has a connection of its own, so a busy duty
pool never makes a healthy worker look unready.

SIGTERM or SIGINT stops the duties (their leases are given back, as `serve`
does on shutdown), then the HTTP server, and the process exits 0. The worker
handles these signals itself rather than through uvicorn, which would raise
the signal again after its shutdown and end the process as "killed".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from order_service import health
from order_service.background import Background, Transports, start_background
from order_service.config import ConfigError, Settings
from order_service.db import create_engine, create_sessionmaker, dispose_when_returned
from order_service.errors import install_error_handlers

logger = logging.getLogger("order_service.worker")

# The duties must have stopped (leases released) within this; SPEC section 12
# gives a worker 10 s from SIGTERM to the end.
STOP_DUTIES_TIMEOUT_S = 8.0
# A scraper's keep-alive connection is not waited for longer than this.
STOP_HTTP_TIMEOUT_S = 1


def health_app(engine: AsyncEngine) -> FastAPI:
    """The worker's HTTP face: health.py's liveness, readiness and metrics routes."""
    app = FastAPI(title="order-service worker", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine = engine  # what /api/v1/health/ready asks `SELECT 1`
    install_error_handlers(app)
    app.include_router(health.router)
    return app


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: `run_worker` stops it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listen(host: str, port: int) -> socket.socket:
    """The health server's socket, bound before any duty starts (a port in use is
    one ConfigError line naming WORKER_PORT, not a half-started worker)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ConfigError(f"WORKER_PORT: cannot listen on {host}:{port}: {reason}") from None


async def run_worker(settings: Settings, sock: socket.socket) -> int:
    """Run the duties and the health server on `sock` until SIGTERM or SIGINT;
    returns the exit code (0: stopped cleanly, 1: the duties did not stop in time)."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    health_engine = create_engine(settings.database_url, pool_size=1)
    duties_engine = create_engine(
        settings.database_url, pool_size=settings.database_background_pool_size
    )
    server = _Server(
        uvicorn.Config(
            health_app(health_engine),
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=STOP_HTTP_TIMEOUT_S,
        )
    )
    try:
        background = await start_background(
            settings, create_sessionmaker(duties_engine), Transports(), own_engine=duties_engine
        )
        serving = asyncio.create_task(server.serve(sockets=[sock]), name="worker-http")
        try:
            host, port = sock.getsockname()[:2]
            names = ", ".join(background.duties) or "none"
            logger.info(
                "worker running (duties: %s); health and metrics on %s:%s", names, host, port
            )
            stop_asked = asyncio.create_task(stopping.wait(), name="worker-stop")
            await asyncio.wait({serving, stop_asked}, return_when=asyncio.FIRST_COMPLETED)
            stop_asked.cancel()
        finally:
            stopped = await _stop_duties(background)
            server.should_exit = True
            await serving
    finally:
        await dispose_when_returned(health_engine)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    logger.info("worker stopped")
    return 0 if stopped else 1


async def _stop_duties(background: Background) -> bool:
    """Stop every duty (leases given back); False when that took too long."""
    try:
        async with asyncio.timeout(STOP_DUTIES_TIMEOUT_S):
            await background.stop()
    except TimeoutError:
        # Whatever is still leased is taken over once its lease expires.
        logger.error("background duties did not stop within %.0f s", STOP_DUTIES_TIMEOUT_S)
        return False
    return True
