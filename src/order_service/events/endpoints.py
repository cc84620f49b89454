"""Webhook endpoints and their delivery log: what the ops routes do (SPEC section 11).

The secret is returned by `create` and by a rotation, and by nothing else;
it is never logged.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from order_service.db import utcnow
from order_service.engine import wakeup
from order_service.errors import DeliveryNotFound, WebhookNotFound
from order_service.events.models import WebhookDelivery, WebhookEndpoint
from order_service.events.relay import PENDING, new_delivery
from order_service.events.schemas import CreateWebhookRequest, UpdateWebhookRequest
from order_service.events.signing import new_secret
from order_service.jsonresponse import iso
from order_service.orders.views import page_meta

endpoints_t = WebhookEndpoint.__table__
deliveries_t = WebhookDelivery.__table__

PING = "webhook.ping"


def endpoint_json(row: Mapping[str, Any], *, secret: str | None = None) -> dict[str, Any]:
    data = {
        "id": str(row["id"]),
        "url": row["url"],
        "events": row["events"],
        "description": row["description"],
        "isActive": row["is_active"],
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
    }
    if secret is not None:
        data["secret"] = secret
    return data


def delivery_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "endpointId": str(row["endpoint_id"]),
        "eventId": str(row["event_id"]),
        "eventType": row["event_type"],
        "status": row["status"],
        "attempts": row["attempts"],
        "nextAttemptAt": iso(row["next_attempt_at"]),
        "lastStatusCode": row["last_status_code"],
        "lastError": row["last_error"],
        "lastDurationMs": row["last_duration_ms"],
        "deliveredAt": iso(row["delivered_at"]),
        "createdAt": iso(row["created_at"]),
    }


async def _get(session: AsyncSession, endpoint_id: uuid.UUID) -> Mapping[str, Any]:
    row = (
        (await session.execute(select(endpoints_t).where(endpoints_t.c.id == endpoint_id)))
        .mappings()
        .first()
    )
    if row is None:
        raise WebhookNotFound()
    return row


async def create(session: AsyncSession, body: CreateWebhookRequest) -> dict[str, Any]:
    now = utcnow()
    secret = new_secret()
    values = {
        "id": uuid.uuid4(),
        "url": body.url,
        "events": body.events,
        "description": body.description,
        "secret": secret,
        "is_active": True,
        "created_at": now,
        "updated_at": now,
    }
    await session.execute(insert(endpoints_t).values(**values))
    return {"data": endpoint_json(values, secret=secret)}


async def list_endpoints(session: AsyncSession, *, page: int, limit: int) -> dict[str, Any]:
    total = await session.scalar(select(func.count()).select_from(endpoints_t)) or 0
    rows = (
        await session.execute(
            select(endpoints_t)
            .order_by(endpoints_t.c.created_at.desc(), endpoints_t.c.id)
            .offset((page - 1) * limit)
            .limit(limit)
        )
    ).mappings()
    return {"data": [endpoint_json(row) for row in rows], "meta": page_meta(page, limit, total)}


async def get(session: AsyncSession, endpoint_id: uuid.UUID) -> dict[str, Any]:
    return {"data": endpoint_json(await _get(session, endpoint_id))}


async def patch(
    session: AsyncSession, endpoint_id: uuid.UUID, body: UpdateWebhookRequest
) -> dict[str, Any]:
    await _get(session, endpoint_id)
    values: dict[str, Any] = {
        name: getattr(body, name)
        for name in ("url", "events", "description", "is_active")
        if name in body.model_fields_set and getattr(body, name) is not None
    }
    if "description" in body.model_fields_set and body.description is None:
        values["description"] = None  # an explicit null clears it
    secret = new_secret() if body.rotate_secret else None
    if secret is not None:
        values["secret"] = secret
    values["updated_at"] = utcnow()
    row = (
        (
            await session.execute(
                update(endpoints_t)
                .where(endpoints_t.c.id == endpoint_id)
                .values(**values)
                .returning(*endpoints_t.c)
            )
        )
        .mappings()
        .one()
    )
    if values.get("is_active"):
        # Deliveries kept while it was off go out now.
        wakeup.wake_after_commit(session, wakeup.DELIVERIES)
    return {"data": endpoint_json(row, secret=secret)}


async def remove(session: AsyncSession, endpoint_id: uuid.UUID) -> None:
    await _get(session, endpoint_id)
    # Deliveries first: SQLite enforces the cascade only with foreign keys on.
    await session.execute(delete(deliveries_t).where(deliveries_t.c.endpoint_id == endpoint_id))
    await session.execute(delete(endpoints_t).where(endpoints_t.c.id == endpoint_id))


async def list_deliveries(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    *,
    page: int,
    limit: int,
    status: str | None,
) -> dict[str, Any]:
    await _get(session, endpoint_id)
    t = deliveries_t
    conditions = [t.c.endpoint_id == endpoint_id]
    if status is not None:
        conditions.append(t.c.status == status)
    total = await session.scalar(select(func.count()).select_from(t).where(*conditions)) or 0
    rows = (
        await session.execute(
            select(t)
            .where(*conditions)
            .order_by(t.c.created_at.desc(), t.c.id.desc())
            .offset((page - 1) * limit)
            .limit(limit)
        )
    ).mappings()
    return {"data": [delivery_json(row) for row in rows], "meta": page_meta(page, limit, total)}


async def redeliver(
    session: AsyncSession, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> dict[str, Any]:
    """A new attempt now: PENDING, due now (the attempt count goes on)."""
    await _get(session, endpoint_id)
    t = deliveries_t
    row = (
        (
            await session.execute(
                update(t)
                .where(t.c.id == delivery_id, t.c.endpoint_id == endpoint_id)
                .values(status=PENDING, next_attempt_at=utcnow(), updated_at=utcnow())
                .returning(*t.c)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise DeliveryNotFound()
    wakeup.wake_after_commit(session, wakeup.DELIVERIES)
    return {"data": delivery_json(row)}


async def ping(session: AsyncSession, endpoint_id: uuid.UUID) -> dict[str, Any]:
    """A webhook.ping to this endpoint alone: not in the feed, no sequence."""
    await _get(session, endpoint_id)
    now = utcnow()
    event_id = uuid.uuid4()
    payload = {
        "id": str(event_id),
        "sequence": None,
        "type": PING,
        "createdAt": iso(now),
        "orderId": None,
        "data": {"endpointId": str(endpoint_id)},
    }
    values = new_delivery(endpoint_id, event_id, PING, now, payload)
    await session.execute(insert(deliveries_t).values(**values))
    wakeup.wake_after_commit(session, wakeup.DELIVERIES)
    return {"data": delivery_json(values)}
