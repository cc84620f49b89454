"""Engine, sessions, the declarative Base and the portable column types.

Every difference between PostgreSQL and SQLite lives in this module:
timezone-aware timestamps, JSON/JSONB, SQLite's PRAGMAs and the pool.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, MetaData, Select, Table, event, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from order_service import clock

logger = logging.getLogger("order_service")

# Named constraints keep Alembic migrations readable and let SQLite's batch
# mode find constraints again.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    """Now, from the service's one clock (`order_service.clock`)."""
    return clock.now()


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    PostgreSQL stores `timestamptz`; SQLite has no time zones, so values are
    stored as UTC and the zone is put back when they are read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSON on SQLite, JSONB on PostgreSQL.
PortableJSON = JSON().with_variant(JSONB(), "postgresql")


def create_engine(database_url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    """Create the process's engine with settings that suit each database."""
    if database_url.startswith("sqlite"):
        in_memory = ":memory:" in database_url or database_url.endswith("://")
        kwargs: dict[str, Any] = {"connect_args": {"timeout": 30}}
        if in_memory:
            # One shared connection, or every session would see its own empty database.
            kwargs["poolclass"] = StaticPool
        engine = create_async_engine(database_url, echo=echo, hide_parameters=True, **kwargs)
        _quiet_aiosqlite()
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
        return engine
    return create_async_engine(
        database_url,
        echo=echo,
        # Bound values (webhook secrets among them) never reach a log line or
        # an error message, even with SQLAlchemy's own logging turned up.
        hide_parameters=True,
        # No overflow: SQLAlchemy closes an overflow connection as soon as it is
        # returned, so under a load just above pool_size every request paid for a
        # new PostgreSQL backend (fork, SSL probe, asyncpg type introspection,
        # empty statement cache). Requests beyond the pool wait for a connection
        # instead, which is cheaper than opening one.
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=False,
        pool_recycle=1800,
        # Statement caching per connection pays off on the hot read path.
        connect_args={"statement_cache_size": 256},
    )


def _quiet_aiosqlite() -> None:
    """aiosqlite logs every statement *with its bound values* at DEBUG (webhook
    secrets, user ids). Its module logger is swapped for one outside the logging
    tree that never goes below INFO, so no log level setting can turn that on."""
    import aiosqlite.core

    if getattr(aiosqlite.core.LOG, "name", "") != "aiosqlite.quiet":
        quiet = logging.Logger("aiosqlite.quiet", logging.INFO)
        quiet.parent = logging.getLogger("aiosqlite")  # INFO and up still reach the handlers
        aiosqlite.core.LOG = quiet


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let pysqlite not emit BEGIN itself: the "begin" hook below does, so that
    # every transaction takes the write lock up front (BEGIN IMMEDIATE) and
    # concurrent writers queue instead of failing with "database is locked".
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_on_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


async def advisory_xact_lock(session: AsyncSession, namespace: int, key: str) -> None:
    """Serialize transactions about one `key` (e.g. a user id) until this one ends.

    PostgreSQL: a transaction-scoped advisory lock on (namespace, hashtext(key)).
    The two-int form keeps each `namespace` (pick a distinct constant per use)
    apart from every other advisory lock; a hash collision between two keys
    only makes them wait for each other. SQLite: nothing to do, every write
    transaction already holds the database's write lock (BEGIN IMMEDIATE in
    `_sqlite_on_begin`), taken by this session's first statement.
    """
    if session.bind.dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:key))"),
            {"namespace": namespace, "key": key},
        )


async def insert_if_absent(session: AsyncSession, table: Table, values: dict[str, Any]) -> None:
    """INSERT the row unless one with the same key exists (ON CONFLICT DO NOTHING on
    both databases, each in its own dialect's spelling)."""
    if session.bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    await session.execute(dialect_insert(table).values(**values).on_conflict_do_nothing())


def skip_locked(statement: Select[Any]) -> Select[Any]:
    """Lock the selected rows until the transaction ends, skipping rows others hold.

    PostgreSQL: SELECT ... FOR UPDATE SKIP LOCKED, so processes scanning the
    same due rows split them instead of queueing behind each other. SQLite
    renders no locking clause: every write transaction already holds the
    database's write lock (BEGIN IMMEDIATE), one process at a time.
    """
    return statement.with_for_update(skip_locked=True)


async def plan_with_values(session: AsyncSession) -> None:
    """Plan this transaction's queries for their actual parameter values (PostgreSQL).

    asyncpg prepares every statement; after five runs PostgreSQL may switch a
    prepared statement to a generic plan, chosen without the parameters. For
    a query like "PENDING_PAYMENT created before $2" or "ACTIVE, canceled at
    period end, expired before $2" the generic plan cannot tell that almost no
    row is due, and reads every order (a sequential scan, or the created_at
    index filtered by status): the lifecycle scan's cost then grows with the
    total, the thing SPEC section 9 rules out. A custom plan costs a fraction
    of a millisecond per query; the scan runs a handful per interval.
    """
    if session.bind.dialect.name == "postgresql":
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


async def dispose_when_returned(engine: AsyncEngine, *, within_s: float = 5.0) -> int:
    """Dispose of the engine once every connection is back in its pool, waiting at most
    `within_s`; returns how many were still out (0 when all came back).

    `dispose()` closes only the connections in the pool. One still checked out
    (a cancelled duty finishing its rollback) would otherwise outlive the
    process's shutdown; on SQLite that is an open write transaction, which
    locks the database file for whoever opens it next.
    """
    pool = engine.pool
    checked_out = getattr(pool, "checkedout", lambda: 0)
    deadline = time.monotonic() + within_s
    # Polled: the pool's checkin event fires before its count drops.
    while checked_out() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    left = int(checked_out())
    if left:
        logger.warning("%d database connection(s) still in use at shutdown; closing the rest", left)
    await engine.dispose()
    return left


def create_sessionmaker(
    engine: AsyncEngine,
    *,
    session_class: type[AsyncSession] = AsyncSession,
    info: dict[str, Any] | None = None,
) -> async_sessionmaker[AsyncSession]:
    """`session_class` and `info` (copied into each session's `info`): reads_first.py."""
    # expire_on_commit=False: objects stay readable after commit, which is when
    # responses are rendered.
    return async_sessionmaker(
        engine, class_=session_class, info=info, expire_on_commit=False, autoflush=False
    )


@asynccontextmanager
async def session_scope(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on any error."""
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            session.info.pop("on_commit", None)
            await session.rollback()
            for undo in session.info.pop("on_rollback", []):
                await undo()
            raise
        session.info.pop("on_rollback", None)
        run_on_commit_callbacks(session)


def on_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run `callback` once the session's transaction has committed.

    For side effects that must not happen if the transaction rolls back, such
    as waking the provisioner for an order that was just paid.
    """
    session.info.setdefault("on_commit", []).append(callback)


def on_rollback(session: AsyncSession, callback: Callable[[], Awaitable[None]]) -> None:
    """Await `callback` if the session's transaction does not commit.

    For work done outside the transaction that must be undone when it fails,
    even when it is the final commit itself that fails.
    """
    session.info.setdefault("on_rollback", []).append(callback)


def run_on_commit_callbacks(session: AsyncSession) -> None:
    for callback in session.info.pop("on_commit", []):
        callback()


class DriverReader:
    """A read-only stand-in for a session on PostgreSQL: one asyncpg connection.

    The GET endpoints read with the driver's own statements (orders/repository.py)
    and need no transaction, no unit of work and no ORM: borrowing a connection
    from an asyncpg pool directly costs a fraction of a session's checkout
    (bench/analysis.md, profile). ``info`` mirrors ``AsyncSession.info``
    for the per-request caches the repository keeps.
    """

    __slots__ = ("driver", "info")

    def __init__(self, driver: Any) -> None:
        self.driver = driver
        self.info: dict[str, Any] = {}


async def _init_read_connection(connection: Any) -> None:
    # The same JSON decoding SQLAlchemy's asyncpg dialect installs, so a row
    # reads the same whichever pool it came from.
    await connection.set_type_codec(
        "json", encoder=str.encode, decoder=_decode_json, schema="pg_catalog", format="binary"
    )
    await connection.set_type_codec(
        "jsonb",
        encoder=_encode_jsonb,
        decoder=_decode_jsonb,
        schema="pg_catalog",
        format="binary",
    )


def _decode_json(raw: bytes) -> Any:
    return json.loads(raw)


def _encode_jsonb(value: str) -> bytes:
    return b"\x01" + value.encode()


def _decode_jsonb(raw: bytes) -> Any:
    return json.loads(raw[1:])  # the first byte is JSONB's format version


async def create_read_pool(engine: AsyncEngine, size: int) -> Any:
    """PostgreSQL: an asyncpg pool for the GET endpoints; SQLite: None (they use sessions)."""
    if engine.dialect.name != "postgresql":
        return None
    import asyncpg

    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    # Opened on first use and kept (no inactive lifetime), like the engine's
    # pool: start-up does not need the database, and a warm pool stays warm.
    return await asyncpg.create_pool(
        dsn,
        min_size=0,
        max_size=size,
        max_inactive_connection_lifetime=0,
        statement_cache_size=256,
        init=_init_read_connection,
        reset=_keep_read_connection,
    )


async def _keep_read_connection(connection: Any) -> None:
    """What a read connection needs when it goes back to the pool: nothing more.

    asyncpg's default reset is one more round trip per read (advisory unlock,
    CLOSE ALL, UNLISTEN, RESET ALL), waited for before the response is sent;
    reads take no lock, open no cursor, listen to nothing and set nothing. An
    open transaction (there is none) is still rolled back by the pool itself.
    """
