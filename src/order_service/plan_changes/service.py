"""Plan change use cases: quote, create, list, cancel (payment: payment.py; SPEC section 15).

Services flush, the request's session commits. Locks are taken in the same
order as every writer of renewals and plan changes: the order row first, then
the plan change. Under the order's lock a plan change and an unpaid renewal
exclude each other both ways (409 RENEWAL_PENDING here, 409
PLAN_CHANGE_PENDING for a renewal), and the partial unique index keeps one
open plan change per order whatever the path.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from order_service.accounts.do_catalog import DoCatalog
from order_service.catalog.client import CatalogClient
from order_service.db import on_rollback, utcnow
from order_service.errors import (
    OrderAccessDenied,
    OrderNotFound,
    OrderStatusConflict,
    PlanChangeNotFound,
    PlanChangePending,
    RenewalPending,
)
from order_service.events.outbox import write_event
from order_service.jsonresponse import dumps
from order_service.orders import repository as repo
from order_service.orders.idempotency import IdempotencyStore, StoredResponse, fingerprint
from order_service.orders.states import PlanChangeStatus
from order_service.orders.views import page_meta
from order_service.plan_changes import payment
from order_service.plan_changes.quote import Prices, amount, check_changeable, price_change
from order_service.plan_changes.schemas import CreatePlanChangeRequest
from order_service.plan_changes.store import changes_t, check_no_open_plan_change
from order_service.plan_changes.views import plan_change_json
from order_service.renewals.service import open_renewal

_INSERT = insert(changes_t).returning(*changes_t.c)
_UNPAID = PlanChangeStatus.PENDING_PAYMENT.value


def parse_plan_change_id(value: str) -> uuid.UUID:
    """A malformed id names no plan change: 404, like an unknown one."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise PlanChangeNotFound() from None


async def _order(session: AsyncSession, order_id: uuid.UUID, owner: str | None) -> Any:
    found = await repo.get_order_with_task(session, order_id)
    if found is None:
        raise OrderNotFound()
    if owner is not None and found[0]["user_id"] != owner:
        raise OrderAccessDenied()
    return found


async def _check_no_unpaid_renewal(session: AsyncSession, order_id: uuid.UUID) -> None:
    renewal_id = await open_renewal(session, order_id)
    if renewal_id is not None:
        raise RenewalPending(
            "The order has an unpaid renewal: pay or cancel it before changing the plan",
            details={"renewalId": str(renewal_id)},
        )


# ---------------------------------------------------------------- quote


async def quote_plan_change(
    session: AsyncSession,
    catalog: CatalogClient,
    do_catalog: DoCatalog,
    order_id: uuid.UUID,
    plan_id: str,
    *,
    owner: str | None,
) -> dict[str, Any]:
    order, task = await _order(session, order_id, owner)
    check_changeable(order, plan_id, "query")
    await session.rollback()  # no connection held while catalog and DO answer
    now = utcnow()
    prices = await price_change(catalog, do_catalog, order, task, plan_id, now)
    due = amount(prices, order["expires_at"], order["duration"], now)
    return {
        "data": {
            "fromPlanId": prices.from_plan_id,
            "toPlanId": prices.to_plan_id,
            "toPlanName": prices.to_plan_name,
            "duration": order["duration"],
            "oldPrice": prices.old_price,
            "newPrice": prices.new_price,
            "remainingSeconds": due.remaining_s,
            "periodSeconds": due.period_s,
            "amountDue": due.amount_due,
            "currency": "IDR",
            "resizeDisk": prices.resize_disk,
        }
    }


# ---------------------------------------------------------------- create


async def create_plan_change(
    session: AsyncSession,
    catalog: CatalogClient,
    do_catalog: DoCatalog,
    idempotency: IdempotencyStore,
    order_id: uuid.UUID,
    request: CreatePlanChangeRequest,
    *,
    owner: str | None,
    actor: str,
    scope: str,
    idempotency_key: str | None,
) -> StoredResponse:
    """201 with the plan change (PENDING_PAYMENT, or PAID when nothing is due), or the
    first response replayed for a reused Idempotency-Key."""
    create = functools.partial(
        _create, session, catalog, do_catalog, order_id, request, owner=owner, actor=actor
    )
    if idempotency_key is None:
        return await create()
    request_hash = fingerprint(request.fingerprint(order_id))
    replay = await idempotency.claim(scope, idempotency_key, request_hash)
    if replay is not None:
        return replay
    on_rollback(session, functools.partial(idempotency.release, scope, idempotency_key))
    response = await create()
    await idempotency.complete(session, scope, idempotency_key, response)
    return response


async def _checks(session: AsyncSession, order: Mapping[str, Any], plan_id: str) -> None:
    check_changeable(order, plan_id, "body")
    await check_no_open_plan_change(session, order["id"])
    await _check_no_unpaid_renewal(session, order["id"])


async def _create(
    session: AsyncSession,
    catalog: CatalogClient,
    do_catalog: DoCatalog,
    order_id: uuid.UUID,
    request: CreatePlanChangeRequest,
    *,
    owner: str | None,
    actor: str,
) -> StoredResponse:
    # Cheap refusals first, before catalog and DO are asked.
    order, task = await _order(session, order_id, owner)
    await _checks(session, order, request.plan_id)
    await session.rollback()
    prices = await price_change(catalog, do_catalog, order, task, request.plan_id, utcnow())
    # Checked again under the order's lock: the order may have changed meanwhile (a
    # renewal paid moves expiresAt, so the amount is computed from the locked row).
    locked = await repo.lock_order(session, order_id)
    if locked is None:
        raise OrderNotFound()
    await _checks(session, locked, request.plan_id)
    if (locked["plan_id"], locked["disk_gb"]) != (order["plan_id"], order["disk_gb"]):
        raise OrderStatusConflict("The order's plan changed meanwhile: ask for a new quote")
    row = await _insert(session, locked, prices, actor)
    body = plan_change_json(row)
    await write_event(session, "plan_change.created", order_id, plan_change=body)
    if row["amount_due"] == 0:
        body = await payment.mark_paid(session, row, "Nothing due: paid at once")
    return StoredResponse(201, orjson.loads(dumps({"data": body})))


async def _insert(
    session: AsyncSession, order: Mapping[str, Any], prices: Prices, actor: str
) -> Mapping[str, Any]:
    now = utcnow()
    due = amount(prices, order["expires_at"], order["duration"], now)
    values = {
        "id": uuid.uuid4(),
        "order_id": order["id"],
        "from_plan_id": prices.from_plan_id,
        "to_plan_id": prices.to_plan_id,
        "to_plan_name": prices.to_plan_name,
        "to_size_slug": prices.to_size_slug,
        "duration": order["duration"],
        "old_price": prices.old_price,
        "new_price": prices.new_price,
        "amount_due": due.amount_due,
        "currency": "IDR",
        "resize_disk": prices.resize_disk,
        "from_disk_gb": prices.from_disk_gb,
        "to_disk_gb": prices.to_disk_gb,
        "status": _UNPAID,
        "requested_by": actor,
        "created_at": now,
        "updated_at": now,
    }
    try:
        return (await session.execute(_INSERT, values)).mappings().one()
    except IntegrityError:
        # The partial unique index: one open plan change per order, whatever the path.
        raise PlanChangePending("The order has an unpaid or running plan change") from None


# ---------------------------------------------------------------- read


async def list_plan_changes(
    session: AsyncSession, order_id: uuid.UUID, *, owner: str | None, page: int, limit: int
) -> dict[str, Any]:
    await _order(session, order_id, owner)
    where = changes_t.c.order_id == order_id
    rows = (
        (
            await session.execute(
                select(changes_t)
                .where(where)
                .order_by(changes_t.c.created_at.desc(), changes_t.c.id.desc())
                .limit(limit)
                .offset((page - 1) * limit)
            )
        )
        .mappings()
        .all()
    )
    total = (
        await session.execute(select(func.count()).select_from(changes_t).where(where))
    ).scalar_one()
    return {"data": [plan_change_json(row) for row in rows], "meta": page_meta(page, limit, total)}


# ---------------------------------------------------------------- cancel


async def cancel_plan_change(
    session: AsyncSession, order_id: uuid.UUID, change_id: uuid.UUID, *, owner: str | None
) -> dict[str, Any]:
    """An unpaid plan change → CANCELED; any other is 409 (a paid one is being carried out)."""
    await _order(session, order_id, owner)
    rows = await _cancel(session, order_id, changes_t.c.id == change_id)
    if not rows:
        status = (
            await session.execute(
                select(changes_t.c.status).where(
                    changes_t.c.id == change_id, changes_t.c.order_id == order_id
                )
            )
        ).scalar_one_or_none()
        if status is None:
            raise PlanChangeNotFound()
        raise OrderStatusConflict(
            f"Plan change is {status}; only an unpaid plan change can be canceled",
            details={"currentStatus": status},
        )
    return {"data": rows[0]}


async def cancel_open_plan_changes(session: AsyncSession, order_id: uuid.UUID) -> None:
    """The order's termination: an unpaid plan change is CANCELED, a paid one (its resize
    not done) FAILED; the caller holds the order's lock."""
    await _cancel(session, order_id)
    now = utcnow()
    rows = (
        (
            await session.execute(
                update(changes_t)
                .where(
                    changes_t.c.order_id == order_id,
                    changes_t.c.status == PlanChangeStatus.PAID.value,
                )
                .values(
                    status=PlanChangeStatus.FAILED.value,
                    error_code="ORDER_TERMINATED",
                    error_message="The order was terminated before the resize was done",
                    completed_at=now,
                    updated_at=now,
                )
                .returning(*changes_t.c)
            )
        )
        .mappings()
        .all()
    )
    for row in rows:
        await write_event(
            session, "plan_change.failed", order_id, plan_change=plan_change_json(row)
        )


async def _cancel(session: AsyncSession, order_id: uuid.UUID, *where: Any) -> list[dict[str, Any]]:
    rows = (
        (
            await session.execute(
                update(changes_t)
                .where(changes_t.c.order_id == order_id, changes_t.c.status == _UNPAID, *where)
                .values(status=PlanChangeStatus.CANCELED.value, updated_at=utcnow())
                .returning(*changes_t.c)
            )
        )
        .mappings()
        .all()
    )
    bodies = [plan_change_json(row) for row in rows]
    for body in bodies:
        await write_event(session, "plan_change.canceled", order_id, plan_change=body)
    return bodies
