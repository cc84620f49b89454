"""The relay: stamps feed sequences in commit order and fans events out to endpoints.

Why a relay. A change's transaction inserts its event with `sequence` NULL
(events/outbox.py). Numbering at insert time would hand out numbers in
*insert* order while transactions *commit* in another order: a reader that
already saw sequence 8 would never see a 7 that commits later. So numbers
are handed out here, after commit, by one relay transaction at a time:

1. lock the counter row (`SELECT ... FROM event_counter WHERE id = 1 FOR UPDATE`),
2. take up to N committed, unstamped events ordered by (created_at, id),
3. give them last+1, last+2, ... in that order and move the counter,
4. create one PENDING delivery per (active endpoint whose `events` match,
   created before the event),
5. commit.

Relays of every process run this; the row lock makes them take turns, so
the transaction that stamps N+1 starts only after the one that stamped N
committed. A reader who sees N therefore sees every smaller sequence too.
On SQLite, every transaction holds the database's write lock (BEGIN
IMMEDIATE), which serializes the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_service import metrics
from order_service.db import utcnow
from order_service.engine import wakeup
from order_service.events.models import Event, EventCounter, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger("order_service.events")

events_t = Event.__table__
counter_t = EventCounter.__table__
endpoints_t = WebhookEndpoint.__table__
deliveries_t = WebhookDelivery.__table__

BATCH = 500
# Events committed by other processes are found by polling; this process's
# own commits wake the relay at once (wakeup.EVENTS).
POLL_INTERVAL_S = 0.2
# How often the "deliveries pending" gauge is refreshed.
GAUGE_INTERVAL_S = 5.0

PENDING = "PENDING"

_STAMP = (
    update(events_t)
    .where(events_t.c.id == bindparam("event_id"))
    .values(sequence=bindparam("new_sequence"))
)


def endpoint_wants(patterns: list[str], event_type: str) -> bool:
    return "*" in patterns or event_type in patterns


async def _lock_counter(session: AsyncSession) -> int:
    """The last sequence handed out, with the counter row locked until commit."""
    locked = select(counter_t.c.last_sequence).where(counter_t.c.id == 1).with_for_update()
    last = (await session.execute(locked)).scalar_one_or_none()
    if last is not None:
        return last
    # The row is missing (a fresh or wiped database): create it, continuing
    # after any sequence already given. Two relays may race here; the loser's
    # insert does nothing and both then lock the one row.
    start = (
        await session.execute(select(func.coalesce(func.max(events_t.c.sequence), 0)))
    ).scalar_one()
    dialect_insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    await session.execute(
        dialect_insert(counter_t)
        .values(id=1, last_sequence=start)
        .on_conflict_do_nothing(index_elements=["id"])
    )
    return (await session.execute(locked)).scalar_one()


async def stamp_batch(session: AsyncSession, limit: int = BATCH) -> tuple[int, int]:
    """Stamp up to `limit` events and create their deliveries, in the caller's transaction.

    Returns (events stamped, deliveries created). The caller commits.
    """
    last = await _lock_counter(session)
    rows = (
        await session.execute(
            select(events_t.c.id, events_t.c.type, events_t.c.created_at)
            .where(events_t.c.sequence.is_(None))
            .order_by(events_t.c.created_at, events_t.c.id)
            .limit(limit)
        )
    ).all()
    if not rows:
        return 0, 0
    await session.execute(
        _STAMP,
        [{"event_id": row.id, "new_sequence": last + n} for n, row in enumerate(rows, start=1)],
    )
    await session.execute(
        update(counter_t).where(counter_t.c.id == 1).values(last_sequence=last + len(rows))
    )
    deliveries = await _fan_out(session, rows)
    return len(rows), deliveries


async def _fan_out(session: AsyncSession, events: list[Any]) -> int:
    endpoints = (
        await session.execute(
            select(endpoints_t.c.id, endpoints_t.c.events, endpoints_t.c.created_at).where(
                endpoints_t.c.is_active
            )
        )
    ).all()
    if not endpoints:
        return 0
    now = utcnow()
    values: list[dict[str, Any]] = []
    for event in events:
        for endpoint in endpoints:
            # No backfill: an endpoint gets the events written after it was created.
            if endpoint.created_at <= event.created_at and endpoint_wants(
                endpoint.events, event.type
            ):
                values.append(new_delivery(endpoint.id, event.id, event.type, now))
    if values:
        await session.execute(insert(deliveries_t), values)
    return len(values)


def new_delivery(
    endpoint_id: uuid.UUID,
    event_id: uuid.UUID,
    event_type: str,
    now: datetime,
    payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "endpoint_id": endpoint_id,
        "event_id": event_id,
        "event_type": event_type,
        "payload": payload,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "last_status_code": None,
        "last_error": None,
        "last_duration_ms": None,
        "delivered_at": None,
        "created_at": now,
        "updated_at": now,
    }


async def stamp_pending(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """Stamp every committed, unstamped event (batch after batch); returns how many."""
    total = 0
    while True:
        async with sessionmaker() as session, session.begin():
            # Cheap check first, without the lock: an idle relay writes nothing.
            waiting = await session.execute(
                select(events_t.c.id).where(events_t.c.sequence.is_(None)).limit(1)
            )
            if waiting.first() is None:
                return total
            stamped, deliveries = await stamp_batch(session)
        total += stamped
        if deliveries:
            wakeup.wake(wakeup.DELIVERIES)
        if stamped < BATCH:
            return total


class Relay:
    """The relay duty of one process: stamp on wake-up, and poll for other processes' events."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        interval_s: float = POLL_INTERVAL_S,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._interval_s = interval_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._gauge_at = 0.0

    def start(self) -> None:
        wakeup.register(wakeup.EVENTS, self.wake)
        self._task = asyncio.create_task(self._loop(), name="event-relay")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        wakeup.unregister(wakeup.EVENTS, self.wake)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            try:
                await stamp_pending(self._sessionmaker)
                if loop.time() >= self._gauge_at:
                    self._gauge_at = loop.time() + GAUGE_INTERVAL_S
                    await self._count_pending()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("event relay failed; trying again shortly")
            await wakeup.sleep_until_woken(self._wake, self._interval_s)

    async def _count_pending(self) -> None:
        async with self._sessionmaker() as session:
            pending = await session.scalar(
                select(func.count())
                .select_from(deliveries_t)
                .where(deliveries_t.c.status == PENDING)
            )
        metrics.WEBHOOK_DELIVERIES_PENDING.set(pending or 0)
