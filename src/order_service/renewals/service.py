"""Renewal use cases: quote, create, list, cancel (payment: payment.py; SPEC section 9).

Services flush, the request's session commits. Locks are always taken in the
same order, the order row first and then its renewals (the lifecycle's
termination does the same), so a renewal being paid and its order being
terminated wait for each other instead of deadlocking.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

import orjson
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from order_service.catalog.client import CatalogClient
from order_service.db import on_rollback, utcnow
from order_service.errors import (
    OrderAccessDenied,
    OrderNotFound,
    OrderStatusConflict,
    RenewalNotFound,
    RenewalPending,
)
from order_service.events.outbox import write_event
from order_service.jsonresponse import dumps
from order_service.lifecycle.period import extend
from order_service.orders import quoting
from order_service.orders import repository as repo
from order_service.orders.idempotency import IdempotencyStore, StoredResponse, fingerprint
from order_service.orders.pricing import Quote
from order_service.orders.repository import orders_t
from order_service.orders.states import (
    Duration,
    OrderStatus,
    RenewalStatus,
)
from order_service.orders.views import page_meta
from order_service.plan_changes.store import check_no_open_plan_change, open_plan_change
from order_service.renewals.models import Renewal
from order_service.renewals.schemas import CreateRenewalRequest
from order_service.renewals.views import renewal_json

renewals_t = Renewal.__table__
RENEWABLE = frozenset({OrderStatus.ACTIVE, OrderStatus.SUSPENDED})
_OPEN = RenewalStatus.PENDING_PAYMENT.value
_INSERT_RENEWAL = insert(renewals_t).returning(*renewals_t.c)


def parse_renewal_id(value: str) -> uuid.UUID:
    """A malformed renewal id names no renewal: 404, like an unknown one."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise RenewalNotFound() from None


async def _order(session: AsyncSession, order_id: uuid.UUID, owner: str | None) -> dict[str, Any]:
    found = await repo.get_order_with_task(session, order_id)
    if found is None:
        raise OrderNotFound()
    order = found[0]
    if owner is not None and order["user_id"] != owner:
        raise OrderAccessDenied()
    return order


def _check_renewable(order: Any) -> None:
    if order["status"] not in RENEWABLE:
        raise OrderStatusConflict(
            f"Order is {order['status']}; only an ACTIVE or SUSPENDED order can be renewed",
            details={"currentStatus": order["status"]},
        )


async def open_renewal(session: AsyncSession, order_id: uuid.UUID) -> uuid.UUID | None:
    statement = select(renewals_t.c.id).where(
        renewals_t.c.order_id == order_id, renewals_t.c.status == _OPEN
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def _check_no_open_renewal(session: AsyncSession, order_id: uuid.UUID) -> None:
    open_id = await open_renewal(session, order_id)
    if open_id is not None:
        raise RenewalPending(
            "The order already has an unpaid renewal: pay or cancel it first",
            details={"renewalId": str(open_id)},
        )


async def price_renewal(
    catalog: CatalogClient, order: Any, periods: int, coupon_code: str | None
) -> Quote:
    """Priced live like an order: the plan's price for the ORDER's duration x periods."""
    plan = await quoting.fetch_active_plan(catalog, order["plan_id"])
    return await quoting.quote(
        catalog,
        plan,
        Duration(order["duration"]),
        user_id=order["user_id"],
        coupon_code=coupon_code,
        now=utcnow(),
        periods=periods,
    )


async def _release_connection(session: AsyncSession) -> None:
    # Nothing is written yet: end the read so no connection (and no
    # transaction) is held while catalog-service answers.
    await session.rollback()


# ---------------------------------------------------------------- quote


async def quote_renewal(
    session: AsyncSession,
    catalog: CatalogClient,
    order_id: uuid.UUID,
    *,
    owner: str | None,
    periods: int,
    coupon_code: str | None,
) -> dict[str, Any]:
    order = await _order(session, order_id, owner)
    _check_renewable(order)
    await _release_connection(session)
    quote = await price_renewal(catalog, order, periods, coupon_code)
    now = utcnow()
    new_expires_at = extend(max(order["expires_at"] or now, now), order["duration"], periods)
    return {
        "data": {
            "periods": periods,
            "duration": order["duration"],
            "basePrice": quote.base_price,
            "promoDiscount": quote.promo_discount,
            "couponCode": quote.coupon_code,
            "couponDiscount": quote.coupon_discount,
            "finalPrice": quote.final_price,
            "currency": "IDR",
            "newExpiresAt": new_expires_at,
        }
    }


# ---------------------------------------------------------------- create


async def create_renewal(
    session: AsyncSession,
    catalog: CatalogClient,
    idempotency: IdempotencyStore,
    order_id: uuid.UUID,
    request: CreateRenewalRequest,
    *,
    owner: str | None,
    actor: str,
    scope: str,
    idempotency_key: str | None,
) -> StoredResponse:
    """201 with a PENDING_PAYMENT renewal, or the first response replayed for a reused key.

    `owner`: the user who must own the order (None for ops); `scope`: whose
    Idempotency-Keys these are (the user, or the operator key).
    """
    if idempotency_key is None:
        return await _create(session, catalog, order_id, request, owner=owner, actor=actor)
    request_hash = fingerprint(request.fingerprint(order_id))
    replay = await idempotency.claim(scope, idempotency_key, request_hash)
    if replay is not None:
        return replay
    on_rollback(session, functools.partial(idempotency.release, scope, idempotency_key))
    response = await _create(session, catalog, order_id, request, owner=owner, actor=actor)
    await idempotency.complete(session, scope, idempotency_key, response)
    return response


async def _create(
    session: AsyncSession,
    catalog: CatalogClient,
    order_id: uuid.UUID,
    request: CreateRenewalRequest,
    *,
    owner: str | None,
    actor: str,
) -> StoredResponse:
    # Cheap refusals first, before catalog is asked.
    order = await _order(session, order_id, owner)
    _check_renewable(order)
    await _check_no_open_renewal(session, order_id)
    await check_no_open_plan_change(session, order_id)
    await _release_connection(session)
    quote = await price_renewal(catalog, order, request.periods, request.coupon_code)
    # Under the order's row lock, checked again: the order may have changed
    # while catalog answered, and a racing create of the same order waits here.
    locked = await repo.lock_order(session, order_id)
    if locked is None:
        raise OrderNotFound()
    _check_renewable(locked)
    await _check_no_open_renewal(session, order_id)
    # Exclusive both ways with a plan change (SPEC section 15), under the same lock.
    await check_no_open_plan_change(session, order_id)
    body = await _insert_renewal(session, locked, quote, request.periods, actor)
    return StoredResponse(201, orjson.loads(dumps({"data": body})))


async def _insert_renewal(
    session: AsyncSession, order: Any, quote: Quote, periods: int, actor: str
) -> dict[str, Any]:
    """The one insert of a renewal (users', ops' and the lifecycle's) and its event;
    the caller holds the order's lock and made the checks."""
    now = utcnow()
    try:
        row = (
            (
                await session.execute(
                    _INSERT_RENEWAL,
                    {
                        "id": uuid.uuid4(),
                        "order_id": order["id"],
                        "periods": periods,
                        "duration": order["duration"],
                        **quote.price_columns(),
                        "status": _OPEN,
                        "requested_by": actor,
                        "previous_expires_at": None,
                        "new_expires_at": None,
                        "created_at": now,
                        "updated_at": now,
                        "paid_at": None,
                    },
                )
            )
            .mappings()
            .one()
        )
    except IntegrityError:
        # The partial unique index: one open renewal per order, whatever the path.
        raise RenewalPending("The order already has an unpaid renewal") from None
    body = renewal_json(row)
    await write_event(session, "renewal.created", order["id"], renewal=body)
    return body


async def open_period_renewal(session: AsyncSession, due: Any, quote: Quote, *, actor: str) -> bool:
    """SPEC section 9, rule 6: the next period's renewal, opened by the service itself.

    `due` is the order as the scan priced it (id, plan_id, expires_at). Under
    the order's lock it must still be that ACTIVE order in that period, not
    ending at the period's end and not invoiced for it yet. The period is then
    marked invoiced (`renewal_due_at` null), so a renewal canceled later is not
    opened again before the next period - also when the order already had an
    open renewal (the customer's own). While a plan change is open nothing is
    marked: the next scan tries again. True when a renewal was opened.
    """
    order = await repo.lock_order(session, due["id"])
    if (
        order is None
        or order["status"] != OrderStatus.ACTIVE
        or order["cancel_at_period_end"]
        or order["plan_id"] != due["plan_id"]
        or order["expires_at"] != due["expires_at"]
        or order["renewal_due_at"] != order["expires_at"]
    ):
        return False
    if await open_plan_change(session, order["id"]) is not None:
        return False
    await session.execute(
        update(orders_t).where(orders_t.c.id == order["id"]).values(renewal_due_at=None)
    )
    if await open_renewal(session, order["id"]) is not None:
        return False
    await _insert_renewal(session, order, quote, 1, actor)
    return True


# ---------------------------------------------------------------- read


async def list_renewals(
    session: AsyncSession, order_id: uuid.UUID, *, owner: str | None, page: int, limit: int
) -> dict[str, Any]:
    await _order(session, order_id, owner)
    rows = (
        (
            await session.execute(
                select(renewals_t)
                .where(renewals_t.c.order_id == order_id)
                .order_by(renewals_t.c.created_at.desc(), renewals_t.c.id.desc())
                .limit(limit)
                .offset((page - 1) * limit)
            )
        )
        .mappings()
        .all()
    )
    total = (
        await session.execute(
            select(func.count()).select_from(renewals_t).where(renewals_t.c.order_id == order_id)
        )
    ).scalar_one()
    return {"data": [renewal_json(row) for row in rows], "meta": page_meta(page, limit, total)}


# ---------------------------------------------------------------- changes


async def cancel_renewal(
    session: AsyncSession, order_id: uuid.UUID, renewal_id: uuid.UUID, *, owner: str | None
) -> dict[str, Any]:
    """An unpaid renewal → CANCELED; a PAID or CANCELED one is 409."""
    await _order(session, order_id, owner)
    now = utcnow()
    row = (
        (
            await session.execute(
                update(renewals_t)
                .where(
                    renewals_t.c.id == renewal_id,
                    renewals_t.c.order_id == order_id,
                    renewals_t.c.status == _OPEN,
                )
                .values(status=RenewalStatus.CANCELED.value, updated_at=now)
                .returning(*renewals_t.c)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        current = await _renewal_status(session, renewal_id, order_id)
        raise OrderStatusConflict(
            f"Renewal is {current}; only an unpaid renewal can be canceled",
            details={"currentStatus": current},
        )
    body = renewal_json(row)
    await write_event(session, "renewal.canceled", order_id, renewal=body)
    return {"data": body}


async def _renewal_status(session: AsyncSession, renewal_id: uuid.UUID, order_id: uuid.UUID) -> str:
    status = (
        await session.execute(
            select(renewals_t.c.status).where(
                renewals_t.c.id == renewal_id, renewals_t.c.order_id == order_id
            )
        )
    ).scalar_one_or_none()
    if status is None:
        raise RenewalNotFound()
    return status


async def cancel_open_renewals(session: AsyncSession, order_id: uuid.UUID) -> int:
    """Cancel the order's open renewal (its termination); the caller holds the order lock."""
    rows = (
        (
            await session.execute(
                update(renewals_t)
                .where(renewals_t.c.order_id == order_id, renewals_t.c.status == _OPEN)
                .values(status=RenewalStatus.CANCELED.value, updated_at=utcnow())
                .returning(*renewals_t.c)
            )
        )
        .mappings()
        .all()
    )
    for row in rows:
        await write_event(session, "renewal.canceled", order_id, renewal=renewal_json(row))
    return len(rows)
