"""The event feed (SPEC section 11): stamped events after a sequence, in sequence order.

Only events the relay has stamped are shown. The relay stamps in commit
order under one row lock (events/relay.py), so once a reader has seen
sequence N, no event with a smaller sequence can still appear: paging with
`after = meta.next` misses nothing and repeats nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from order_service.events.models import Event
from order_service.jsonresponse import iso

events_t = Event.__table__


def event_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """An event as the feed and webhooks show it."""
    return {
        "id": str(row["id"]),
        "sequence": row["sequence"],
        "type": row["type"],
        "createdAt": iso(row["created_at"]),
        "orderId": str(row["order_id"]) if row["order_id"] is not None else None,
        "data": row["data"],
    }


async def read_feed(
    session: AsyncSession,
    *,
    after: int,
    limit: int,
    order_id: uuid.UUID | None = None,
    event_type: str | None = None,
) -> dict[str, Any]:
    t = events_t
    query = select(t).where(t.c.sequence.is_not(None), t.c.sequence > after)
    if order_id is not None:
        query = query.where(t.c.order_id == order_id)
    if event_type is not None:
        query = query.where(t.c.type == event_type)
    rows = (await session.execute(query.order_by(t.c.sequence).limit(limit))).mappings().all()
    data = [event_json(row) for row in rows]
    return {"data": data, "meta": {"next": rows[-1]["sequence"] if rows else after}}
