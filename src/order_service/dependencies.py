"""FastAPI dependencies shared by the routers: the unit of work and app services."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.ext.asyncio import AsyncSession

from order_service.catalog.client import CatalogClient
from order_service.config import Settings
from order_service.db import DriverReader, session_scope
from order_service.engine import wakeup
from order_service.errors import DatabaseUnavailable, OrderNotFound
from order_service.orders.creation import ServerRules
from order_service.orders.idempotency import IdempotencyStore


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    # scope="function" (below): the commit happens when the endpoint returns,
    # *before* the response is sent, so a client never sees a success that
    # did not commit.
    # A context manager, not a generator loop: an exception raised by the
    # endpoint must reach session_scope's rollback now, not when the
    # generator is garbage-collected.
    async with session_scope(request.app.state.sessionmaker) as session:
        yield session


# Like SQLAlchemy's pool_timeout: a read waits this long for a connection.
READ_POOL_TIMEOUT_S = 30.0


async def _reader(request: Request) -> AsyncIterator[AsyncSession | DriverReader]:
    # PostgreSQL: a connection from the read pool, no session and no
    # transaction (each read is one statement, or two whose snapshot need not
    # agree: a page and its count, an order and its immutable items).
    # SQLite: a session like any other.
    pool = request.app.state.read_pool
    if pool is None:
        async with session_scope(request.app.state.sessionmaker) as session:
            yield session
        return
    try:
        # asyncio.timeout, not acquire(timeout=): on Python 3.11 the latter wraps the
        # acquisition in a task, one more turn of the event loop for every read even
        # when a connection is free, and a turn is what a read waits longest for
        # while the loop is busy (bench/analysis.md, storm).
        async with asyncio.timeout(READ_POOL_TIMEOUT_S):
            connection = await pool.acquire()
    except (OSError, TimeoutError) as exc:  # refused, unreachable, or every connection busy
        raise DatabaseUnavailable() from exc
    try:
        yield DriverReader(connection)
    finally:
        await pool.release(connection)


# Every dependency is `async def`, even those that never await: FastAPI runs a
# plain `def` dependency in the thread pool, and that hop (queue, thread wake-up,
# GIL hand-over) costs more than the whole database read it precedes.
async def _catalog(request: Request) -> CatalogClient:
    return request.app.state.catalog


async def _idempotency(request: Request) -> IdempotencyStore:
    return request.app.state.idempotency


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


async def _server_rules(request: Request) -> ServerRules:
    return request.app.state.server_rules


async def _wake_provisioner() -> Callable[[], None]:
    # Every provisioner of this process, on whichever loop it runs (none: nothing).
    return _wake_provisioning


def _wake_provisioning() -> None:
    wakeup.wake(wakeup.PROVISIONING)


async def _order_id(
    order_id: Annotated[str, Path(description="Order id (UUID)")],
) -> uuid.UUID:
    # A malformed id names no order: 404, like an unknown one.
    try:
        return uuid.UUID(order_id)
    except ValueError:
        raise OrderNotFound() from None


Session = Annotated[AsyncSession, Depends(_session, scope="function")]
# The GET endpoints' connection: reads only (orders/repository.py's Reader).
ReadSession = Annotated[AsyncSession | DriverReader, Depends(_reader, scope="function")]
Catalog = Annotated[CatalogClient, Depends(_catalog)]
Idempotency = Annotated[IdempotencyStore, Depends(_idempotency)]
AppSettings = Annotated[Settings, Depends(_settings)]
Rules = Annotated[ServerRules, Depends(_server_rules)]
WakeProvisioner = Annotated[Callable[[], None], Depends(_wake_provisioner)]
OrderId = Annotated[uuid.UUID, Depends(_order_id)]
