"""Every query of the order domain, with Core statements returning row mappings.

Reads use plain Core selects (no ORM object loading): the read path is hot,
and the views only need mappings. Each read is a fixed number of queries
however many orders a page holds.

Every statement is built once, at import, with bound parameters: building a
select over 27 labelled columns and generating its cache key on every call
cost more than the round trips it made (profile in bench/analysis.md).

On PostgreSQL the reads go one step further: the statements are compiled
once by SQLAlchemy's asyncpg dialect and run on the session's own asyncpg
connection (same pool, same transaction if one is open, same JSON codecs),
which skips SQLAlchemy's per-execution work and, outside a write
transaction, the BEGIN/COMMIT round trips a plain read does not need (under
READ COMMITTED each statement sees committed data either way). Row locks and
writes always go through SQLAlchemy, so they stay in the transaction. Each
read is a `_Read` (both forms, built at import) and `_fetch` is the one place
that picks the path.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    RowMapping,
    Select,
    Uuid,
    any_,
    bindparam,
    case,
    func,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from order_service.accounts.models import DoAccount
from order_service.db import DriverReader
from order_service.orders.models import Order, OrderItem, StatusHistory
from order_service.provisioning.models import ProvisioningTask

# What the read functions take: a session, or on PostgreSQL a pooled driver
# connection with no session around it (the GET endpoints, dependencies.py).
Reader = AsyncSession | DriverReader

orders_t = Order.__table__
items_t = OrderItem.__table__
tasks_t = ProvisioningTask.__table__
history_t = StatusHistory.__table__
accounts_t = DoAccount.__table__

_TASK_PREFIX = "task__"
# The task's account by name (SPEC section 13: provisioningTask.doAccount).
_ACCOUNT_NAME = accounts_t.c.name.label("do_account")
_TASK_COLUMNS = [
    *(column.label(_TASK_PREFIX + column.name) for column in tasks_t.c),
    accounts_t.c.name.label(_TASK_PREFIX + "do_account"),
]
_TASKS_WITH_ACCOUNT = tasks_t.outerjoin(accounts_t, accounts_t.c.id == tasks_t.c.do_account_id)
# An order's items share one timestamp; list them as created (PLAN, IMAGE, add-ons),
# the order the create response and its idempotent replay show.
_ITEM_RANK = case({"PLAN": 0, "IMAGE": 1}, value=items_t.c.item_type, else_=2)
_ITEM_ORDER = (items_t.c.order_id, items_t.c.created_at, _ITEM_RANK, items_t.c.id)

_ORDER_WITH_TASK = (
    select(orders_t, *_TASK_COLUMNS)
    .select_from(
        orders_t.outerjoin(tasks_t, tasks_t.c.order_id == orders_t.c.id).outerjoin(
            accounts_t, accounts_t.c.id == tasks_t.c.do_account_id
        )
    )
    .where(orders_t.c.id == bindparam("order_id"))
)
_LOCK_ORDER = select(orders_t).where(orders_t.c.id == bindparam("order_id")).with_for_update()
# The order row locked, read with its task: what a transition's event shows.
_LOCK_ORDER_WITH_TASK = _ORDER_WITH_TASK.with_for_update(of=orders_t)
_ITEMS = (
    select(items_t)
    .where(items_t.c.order_id.in_(bindparam("order_ids", expanding=True)))
    .order_by(*_ITEM_ORDER)
)
_TASKS = (
    select(tasks_t, _ACCOUNT_NAME)
    .select_from(_TASKS_WITH_ACCOUNT)
    .where(tasks_t.c.order_id.in_(bindparam("order_ids", expanding=True)))
)
_HISTORY = (
    select(history_t)
    .where(history_t.c.order_id == bindparam("order_id"))
    .order_by(history_t.c.created_at, history_t.c.id)
)


def _list_statements(by_user: bool, by_status: bool) -> tuple[Select[Any], Select[Any]]:
    filters = []
    if by_user:
        filters.append(orders_t.c.user_id == bindparam("user_id"))
    if by_status:
        filters.append(orders_t.c.status == bindparam("status"))
    page = (
        select(orders_t)
        .where(*filters)
        .order_by(orders_t.c.created_at.desc(), orders_t.c.id.desc())
        .limit(bindparam("limit", type_=BigInteger))
        # BigInteger: page (up to 2**31 - 1) times limit outgrows int32.
        .offset(bindparam("offset", type_=BigInteger))
    )
    count = select(func.count()).select_from(orders_t).where(*filters)
    return page, count


# The page query and the count query for each combination of filters.
_LISTS = {(u, s): _list_statements(u, s) for u in (False, True) for s in (False, True)}


@dataclass(frozen=True, slots=True)
class _DriverStatement:
    """A statement as the asyncpg dialect sends it: SQL text and its positional arguments."""

    sql: str
    names: tuple[str, ...]
    constants: dict[str, Any]

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        return [values[n] if n in values else self.constants[n] for n in self.names]


_PG = postgresql.asyncpg.dialect()  # type: ignore[attr-defined]


def _for_driver(statement: Select[Any]) -> _DriverStatement:
    compiled = statement.compile(dialect=_PG)
    return _DriverStatement(str(compiled), tuple(compiled.positiontup or ()), dict(compiled.params))


@dataclass(frozen=True, slots=True)
class _Read:
    """One read statement both ways: SQLAlchemy's, and precompiled for the asyncpg driver."""

    statement: Select[Any]
    driver: _DriverStatement


def _read(statement: Select[Any], on_driver: Select[Any] | None = None) -> _Read:
    """`on_driver`: the driver's own form when it differs (`= ANY(array)` for an IN list)."""
    return _Read(statement, _for_driver(statement if on_driver is None else on_driver))


_ANY_ORDER_ID = bindparam("order_ids", type_=postgresql.ARRAY(Uuid))
_READ_ORDER_WITH_TASK = _read(_ORDER_WITH_TASK)
_READ_ITEMS = _read(
    _ITEMS,
    select(items_t).where(items_t.c.order_id == any_(_ANY_ORDER_ID)).order_by(*_ITEM_ORDER),
)
_READ_TASKS = _read(
    _TASKS,
    select(tasks_t, _ACCOUNT_NAME)
    .select_from(_TASKS_WITH_ACCOUNT)
    .where(tasks_t.c.order_id == any_(_ANY_ORDER_ID)),
)
_READ_HISTORY = _read(_HISTORY)
_READ_LISTS = {key: (_read(page), _read(count)) for key, (page, count) in _LISTS.items()}


async def _fetch(
    session: Reader, read: _Read, params: Mapping[str, Any], *, how: Literal["all", "one", "value"]
) -> Any:
    """Run `read`: on PostgreSQL its precompiled form on the asyncpg connection, else
    through SQLAlchemy. `how`: every row (mappings), the first row or None, or one value."""
    driver = await _driver(session)
    if driver is not None:
        statement = read.driver
        args = statement.args(params)
        if how == "all":
            return await driver.fetch(statement.sql, *args)
        if how == "one":
            return await driver.fetchrow(statement.sql, *args)
        return await driver.fetchval(statement.sql, *args)
    assert isinstance(session, AsyncSession)
    result = await session.execute(read.statement, params)
    if how == "value":
        return result.scalar_one()
    rows = result.mappings()
    return rows.first() if how == "one" else rows.all()


async def _driver(session: AsyncSession | DriverReader) -> Any | None:
    """The asyncpg connection under the session on PostgreSQL; None elsewhere (SQLite)."""
    if isinstance(session, DriverReader):
        return session.driver
    if session.get_bind().dialect.name != "postgresql":
        return None
    connection = await session.connection()
    return (await connection.get_raw_connection()).driver_connection


def _split_task(row: RowMapping) -> tuple[dict[str, Any], dict[str, Any] | None]:
    order: dict[str, Any] = {}
    task: dict[str, Any] = {}
    for key, value in row.items():
        if key.startswith(_TASK_PREFIX):
            task[key[len(_TASK_PREFIX) :]] = value
        else:
            order[key] = value
    return order, (task if task["id"] is not None else None)


OrderWithTask = tuple[dict[str, Any], dict[str, Any] | None]


async def get_order_with_task(session: Reader, order_id: uuid.UUID) -> OrderWithTask | None:
    """The order and its provisioning task (if any) in one query."""
    return await _order_with_task(session, order_id, lock=False)


async def lock_order_with_task(session: AsyncSession, order_id: uuid.UUID) -> OrderWithTask | None:
    """`lock_order`, read with the task: the door knows the whole order it changes,
    so the event it writes needs no read-back."""
    return await _order_with_task(session, order_id, lock=True)


async def _order_with_task(
    session: Reader, order_id: uuid.UUID, *, lock: bool
) -> OrderWithTask | None:
    params = {"order_id": order_id}
    if lock:
        # The lock goes through SQLAlchemy: its asyncpg adapter sends BEGIN before
        # the first statement it executes, and a lock taken on the raw connection
        # first would run outside the transaction and be released at once.
        assert isinstance(session, AsyncSession)
        row = (await session.execute(_LOCK_ORDER_WITH_TASK, params)).mappings().first()
    else:
        row = await _fetch(session, _READ_ORDER_WITH_TASK, params, how="one")
    return _split_task(row) if row is not None else None


async def lock_order(session: AsyncSession, order_id: uuid.UUID) -> RowMapping | None:
    """Read the order's current state and hold its row until the transaction ends.

    On PostgreSQL this is SELECT ... FOR UPDATE: a racing transition waits here
    and then sees the committed status. SQLite has no row locks; there every
    write transaction begins with BEGIN IMMEDIATE (see db.py), which serializes
    writers the same way.
    """
    return (await session.execute(_LOCK_ORDER, {"order_id": order_id})).mappings().first()


async def get_items(
    session: Reader, order_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[RowMapping]]:
    grouped: dict[uuid.UUID, list[RowMapping]] = defaultdict(list)
    if not order_ids:
        return grouped
    for row in await _fetch(session, _READ_ITEMS, {"order_ids": list(order_ids)}, how="all"):
        grouped[row["order_id"]].append(row)
    return grouped


async def items_of(session: Reader, order_id: uuid.UUID) -> list[Any]:
    """One order's items, read once per session: they never change after the order is
    created, and a payment needs them for two events and its response."""
    cache: dict[uuid.UUID, list[Any]] = session.info.setdefault("order_items", {})
    if order_id not in cache:
        items = await get_items(session, [order_id])
        cache[order_id] = items.get(order_id, [])
    return cache[order_id]


async def get_tasks(session: Reader, order_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, RowMapping]:
    if not order_ids:
        return {}
    rows = await _fetch(session, _READ_TASKS, {"order_ids": list(order_ids)}, how="all")
    return {row["order_id"]: row for row in rows}


async def get_history(session: Reader, order_id: uuid.UUID) -> list[RowMapping]:
    return list(await _fetch(session, _READ_HISTORY, {"order_id": order_id}, how="all"))


async def list_orders(
    session: Reader,
    *,
    page: int,
    limit: int,
    user_id: str | None = None,
    status: str | None = None,
) -> tuple[list[RowMapping], int]:
    """One page of orders, newest first, and the total count: two queries."""
    key = (user_id is not None, status is not None)
    params: dict[str, Any] = {"limit": limit, "offset": (page - 1) * limit}
    if user_id is not None:
        params["user_id"] = user_id
    if status is not None:
        params["status"] = status
    page_read, count_read = _READ_LISTS[key]
    rows = list(await _fetch(session, page_read, params, how="all"))
    return rows, int(await _fetch(session, count_read, params, how="value"))


def ids_of(rows: Iterable[RowMapping]) -> list[uuid.UUID]:
    return [row["id"] for row in rows]


_COUNT_IN_STATUS = (
    select(func.count())
    .select_from(orders_t)
    .where(orders_t.c.user_id == bindparam("user_id"), orders_t.c.status == bindparam("status"))
)


async def count_user_orders_in_status(session: AsyncSession, user_id: str, status: str) -> int:
    """How many of the user's orders are in `status` (index ix_orders_user_status_created).

    Runs in the session's transaction (no driver shortcut): callers count under a lock.
    """
    return (
        await session.execute(_COUNT_IN_STATUS, {"user_id": user_id, "status": status})
    ).scalar_one()
