"""Every query of the order domain, with Core statements returning row mappings.

Reads use plain Core selects (no ORM object loading): the read path is hot,
and the views only need mappings. Each read is a fixed number of queries
however many orders a page holds.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import RowMapping, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from order_service.orders.models import Order, OrderItem, StatusHistory
from order_service.provisioning.models import ProvisioningTask

orders_t = Order.__table__
items_t = OrderItem.__table__
tasks_t = ProvisioningTask.__table__
history_t = StatusHistory.__table__

_TASK_PREFIX = "task__"
_TASK_COLUMNS = [column.label(_TASK_PREFIX + column.name) for column in tasks_t.c]
# An order's items share one timestamp; list them as created (PLAN, IMAGE, add-ons),
# the order the create response and its idempotent replay show.
_ITEM_RANK = case({"PLAN": 0, "IMAGE": 1}, value=items_t.c.item_type, else_=2)
_ITEM_ORDER = (items_t.c.order_id, items_t.c.created_at, _ITEM_RANK, items_t.c.id)


def _split_task(row: RowMapping) -> tuple[dict[str, Any], dict[str, Any] | None]:
    order: dict[str, Any] = {}
    task: dict[str, Any] = {}
    for key, value in row.items():
        if key.startswith(_TASK_PREFIX):
            task[key[len(_TASK_PREFIX) :]] = value
        else:
            order[key] = value
    return order, (task if task["id"] is not None else None)


async def get_order_with_task(
    session: AsyncSession, order_id: uuid.UUID
) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """The order and its provisioning task (if any) in one query."""
    statement = (
        select(orders_t, *_TASK_COLUMNS)
        .select_from(orders_t.outerjoin(tasks_t, tasks_t.c.order_id == orders_t.c.id))
        .where(orders_t.c.id == order_id)
    )
    row = (await session.execute(statement)).mappings().first()
    return _split_task(row) if row is not None else None


async def lock_order(session: AsyncSession, order_id: uuid.UUID) -> RowMapping | None:
    """Read the order's current state and hold its row until the transaction ends.

    On PostgreSQL this is SELECT ... FOR UPDATE: a racing transition waits here
    and then sees the committed status. SQLite has no row locks; there every
    write transaction begins with BEGIN IMMEDIATE (see db.py), which serializes
    writers the same way.
    """
    statement = select(orders_t).where(orders_t.c.id == order_id).with_for_update()
    return (await session.execute(statement)).mappings().first()


async def get_items(
    session: AsyncSession, order_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[RowMapping]]:
    grouped: dict[uuid.UUID, list[RowMapping]] = defaultdict(list)
    if not order_ids:
        return grouped
    statement = select(items_t).where(items_t.c.order_id.in_(order_ids)).order_by(*_ITEM_ORDER)
    for row in (await session.execute(statement)).mappings():
        grouped[row["order_id"]].append(row)
    return grouped


async def get_tasks(
    session: AsyncSession, order_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, RowMapping]:
    if not order_ids:
        return {}
    statement = select(tasks_t).where(tasks_t.c.order_id.in_(order_ids))
    return {row["order_id"]: row for row in (await session.execute(statement)).mappings()}


async def get_history(session: AsyncSession, order_id: uuid.UUID) -> list[RowMapping]:
    statement = (
        select(history_t)
        .where(history_t.c.order_id == order_id)
        .order_by(history_t.c.created_at, history_t.c.id)
    )
    return list((await session.execute(statement)).mappings())


async def list_orders(
    session: AsyncSession,
    *,
    page: int,
    limit: int,
    user_id: str | None = None,
    status: str | None = None,
) -> tuple[list[RowMapping], int]:
    """One page of orders, newest first, and the total count: two queries."""
    filters = []
    if user_id is not None:
        filters.append(orders_t.c.user_id == user_id)
    if status is not None:
        filters.append(orders_t.c.status == status)
    page_query = (
        select(orders_t)
        .where(*filters)
        .order_by(orders_t.c.created_at.desc(), orders_t.c.id.desc())
        .limit(limit)
        .offset((page - 1) * limit)
    )
    count_query = select(func.count()).select_from(orders_t).where(*filters)
    rows = list((await session.execute(page_query)).mappings())
    total = (await session.execute(count_query)).scalar_one()
    return rows, total


def ids_of(rows: Iterable[RowMapping]) -> list[uuid.UUID]:
    return [row["id"] for row in rows]
