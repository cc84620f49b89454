"""EVENT_RETENTION (SPEC section 2): old events and finished deliveries are purged.

Run by the housekeeping loop that purges Idempotency-Keys. An event that
still has a PENDING delivery is kept (it will be sent), and so is one the
relay has not stamped yet (it has not been in the feed).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_service.db import utcnow
from order_service.events.models import Event, WebhookDelivery

events_t = Event.__table__
deliveries_t = WebhookDelivery.__table__

# Rows per DELETE: short transactions, no long lock on a big backlog.
CHUNK = 5000


async def purge_old_events(
    sessionmaker: async_sessionmaker[AsyncSession], retention: timedelta
) -> int:
    """Delete finished deliveries and events older than `retention`; returns rows deleted."""
    cutoff = utcnow() - retention
    d, e = deliveries_t, events_t
    old_deliveries = (
        select(d.c.id)
        .where(d.c.status.in_(("DELIVERED", "FAILED")), d.c.created_at < cutoff)
        .limit(CHUNK)
    )
    pending = exists().where(d.c.event_id == e.c.id, d.c.status == "PENDING")
    old_events = (
        select(e.c.id)
        .where(e.c.created_at < cutoff, e.c.sequence.is_not(None), ~pending)
        .limit(CHUNK)
    )
    total = 0
    for table, chosen in ((d, old_deliveries), (e, old_events)):
        while True:
            async with sessionmaker() as session, session.begin():
                result = await session.execute(
                    delete(table).where(table.c.id.in_(chosen.scalar_subquery()))
                )
            deleted = result.rowcount or 0  # type: ignore[attr-defined]
            total += deleted
            if deleted < CHUNK:
                break
    return total
