"""Order use cases: create, read, list, pay, cancel, retry provisioning.

Services flush but never commit: the request's session dependency commits
(or rolls back) the whole unit of work. Status changes go through
`transitions.transition`.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from order_service import metrics
from order_service.auth import CurrentUser
from order_service.catalog.client import CatalogClient
from order_service.db import advisory_xact_lock, on_commit, on_rollback, utcnow
from order_service.errors import (
    AppError,
    OrderAccessDenied,
    OrderNotFound,
    PaymentStatusConflict,
    TooManyUnpaidOrders,
)
from order_service.jsonresponse import dumps
from order_service.orders import quoting
from order_service.orders import repository as repo
from order_service.orders.idempotency import IdempotencyStore, StoredResponse, fingerprint
from order_service.orders.schemas import CreateOrderRequest
from order_service.orders.states import OrderEvent, OrderStatus, TaskStatus
from order_service.orders.transitions import (
    ADMIN,
    SYSTEM,
    Moved,
    OrderRow,
    record_event,
    record_history,
    transition,
)
from order_service.orders.views import order_json, page_meta
from order_service.provisioning.models import ProvisioningTask

tasks_t = ProvisioningTask.__table__
# Built once: a statement built per call costs more than its round trip.
_INSERT_ORDER = insert(repo.orders_t)
_INSERT_ITEMS = insert(repo.items_t)
_INSERT_TASK = insert(tasks_t).returning(*tasks_t.c)


# ---------------------------------------------------------------- create


async def create_order(
    session: AsyncSession,
    catalog: CatalogClient,
    idempotency: IdempotencyStore,
    user: CurrentUser,
    request: CreateOrderRequest,
    idempotency_key: str | None,
    *,
    max_unpaid: int = 0,
) -> StoredResponse:
    """Create an order (201), or replay the first response for a reused key.

    `max_unpaid` > 0: the user may hold at most that many PENDING_PAYMENT
    orders (429 TOO_MANY_UNPAID_ORDERS). A replay is not a new order and is
    never refused for it.
    """
    if idempotency_key is None:
        return await _create(session, catalog, user, request, max_unpaid)
    replay = await idempotency.claim(user.id, idempotency_key, fingerprint(request.fingerprint()))
    if replay is not None:
        return replay
    # If the order does not commit, for whatever reason (the commit itself
    # included), the claim is released and the client may retry with the key.
    on_rollback(session, functools.partial(idempotency.release, user.id, idempotency_key))
    response = await _create(session, catalog, user, request, max_unpaid)
    # The last statement of the transaction: the response commits with the order.
    await idempotency.complete(session, user.id, idempotency_key, response)
    return response


async def _create(
    session: AsyncSession,
    catalog: CatalogClient,
    user: CurrentUser,
    request: CreateOrderRequest,
    max_unpaid: int,
) -> StoredResponse:
    # Everything from the catalog first: no database work (and no connection
    # held) until the order is known to be valid and priced.
    plan, image = await quoting.fetch_plan_and_image(catalog, request.plan_id, request.image_id)
    now = utcnow()
    quote = await quoting.quote(
        catalog,
        plan,
        request.duration,
        user_id=user.id,
        coupon_code=request.coupon_code,
        now=now,
    )
    if max_unpaid > 0:
        await _check_unpaid_limit(session, user, max_unpaid)

    order_id = uuid.uuid4()
    order = {
        "id": order_id,
        "user_id": user.id,
        "plan_id": request.plan_id,
        "plan_name": plan.label,
        "image_id": request.image_id,
        "image_name": image.display_name,
        "duration": request.duration.value,
        "base_price": quote.base_price,
        "promo_discount": quote.promo_discount,
        "coupon_code": quote.coupon_code,
        "coupon_discount": quote.coupon_discount,
        "final_price": quote.final_price,
        "currency": "IDR",
        "status": OrderStatus.PENDING_PAYMENT.value,
        "do_size_slug": plan.provider_size_slug,
        "do_image_slug": image.provider_slug,
        "created_at": now,
        "updated_at": now,
        "paid_at": None,
        "activated_at": None,
        "expires_at": None,
        "suspended_at": None,
        "suspension_reason": None,
        "terminated_at": None,
        "termination_reason": None,
        "cancel_at_period_end": False,
        "next_reminder_at": None,
    }
    items = [
        item_row(
            order_id,
            "PLAN",
            plan.id,
            f"{plan.label} ({request.duration.value})",
            quote.base_price,
            now,
        ),
        item_row(order_id, "IMAGE", image.id, image.display_name, 0, now),
    ]
    await session.execute(_INSERT_ORDER, order)
    await session.execute(_INSERT_ITEMS, items)
    await record_history(
        session,
        order_id,
        None,
        OrderStatus.PENDING_PAYMENT.value,
        actor=user.actor,
        reason="Order created",
    )
    metrics.ORDERS_CREATED.inc()
    body = {"data": order_json(order, items, None)}
    # Stored for idempotent replay as plain JSON (UUIDs and times as strings).
    return StoredResponse(201, orjson.loads(dumps(body)))


# Advisory-lock namespace of "a user's unpaid orders" (db.advisory_xact_lock).
_UNPAID_LOCK_NAMESPACE = 0x0D12


async def _check_unpaid_limit(session: AsyncSession, user: CurrentUser, limit: int) -> None:
    """Refuse one more unpaid order past `limit`; holds the user's lock until commit.

    Without the lock, concurrent creates would all count the same committed
    rows and all pass. The lock is this transaction's first statement, taken
    after the catalog calls, so no connection is held while catalog answers.
    """
    await advisory_xact_lock(session, _UNPAID_LOCK_NAMESPACE, user.id)
    unpaid = await repo.count_user_orders_in_status(
        session, user.id, OrderStatus.PENDING_PAYMENT.value
    )
    if unpaid >= limit:
        raise TooManyUnpaidOrders(
            f"You have {unpaid} unpaid orders (the limit is {limit}): pay or cancel one first",
            details={"limit": limit},
        )


def item_row(
    order_id: uuid.UUID, item_type: str, reference_id: str, description: str, price: int, now: Any
) -> dict[str, Any]:
    """An order_items row (quantity 1)."""
    return {
        "id": uuid.uuid4(),
        "order_id": order_id,
        "item_type": item_type,
        "reference_id": reference_id,
        "description": description,
        "unit_price": price,
        "quantity": 1,
        "total_price": price,
        "created_at": now,
    }


# ---------------------------------------------------------------- read


async def get_order(
    session: repo.Reader,
    order_id: uuid.UUID,
    *,
    owner: CurrentUser | None,
    history: bool,
    known: repo.OrderWithTask | None = None,
) -> dict[str, Any]:
    """The order's JSON. `known`: the order and its task as the caller holds them in
    this transaction (a payment's last move), so they are not read again."""
    found = known if known is not None else await repo.get_order_with_task(session, order_id)
    if found is None:
        raise OrderNotFound()
    order, task = found
    if owner is not None and order["user_id"] != owner.id:
        raise OrderAccessDenied()
    items = await repo.items_of(session, order_id)
    entries = await repo.get_history(session, order_id) if history else None
    return {"data": order_json(order, items, task, entries)}


async def list_orders(
    session: repo.Reader,
    *,
    page: int,
    limit: int,
    user_id: str | None,
    status: OrderStatus | None,
) -> dict[str, Any]:
    if user_id is not None and "\x00" in user_id:
        # No user id holds NUL (tokens with one are refused), and PostgreSQL
        # would refuse the query: no orders.
        return {"data": [], "meta": page_meta(page, limit, 0)}
    rows, total = await repo.list_orders(
        session, page=page, limit=limit, user_id=user_id, status=status.value if status else None
    )
    ids = repo.ids_of(rows)
    items = await repo.get_items(session, ids)
    tasks = await repo.get_tasks(session, ids)
    data = [order_json(row, items.get(row["id"], []), tasks.get(row["id"])) for row in rows]
    return {"data": data, "meta": page_meta(page, limit, total)}


# ---------------------------------------------------------------- changes


async def set_payment_status(
    session: AsyncSession,
    order_id: uuid.UUID,
    status: str,
    notes: str | None,
    *,
    region: str,
    wake_provisioner: Callable[[], None],
    actor: str = ADMIN,
) -> dict[str, Any]:
    """PAID: PENDING_PAYMENT → PAID → PROVISIONING with the task, in one transaction.

    PAYMENT_FAILED: a history event; the order keeps waiting for payment.
    """

    def conflict(current: str, _target: str) -> AppError:
        return PaymentStatusConflict(
            f"Order is {current}; payment status can only change while PENDING_PAYMENT",
            details={"currentStatus": current},
        )

    if status == OrderEvent.PAYMENT_FAILED.value:
        await record_event(
            session,
            order_id,
            OrderEvent.PAYMENT_FAILED,
            expected=OrderStatus.PENDING_PAYMENT,
            actor=actor,
            reason=notes or "Payment failed",
            conflict=conflict,
        )
        return await get_order(session, order_id, owner=None, history=True)
    paid = await transition(
        session,
        order_id,
        OrderStatus.PAID,
        actor=actor,
        reason=notes or "Payment received",
        values={"paid_at": utcnow()},
        conflict=conflict,
    )
    provisioning = await start_provisioning(session, paid, region=region)
    on_commit(session, wake_provisioner)
    # The door knows the order and its task as they stand now: only the history is read.
    return await get_order(
        session,
        order_id,
        owner=None,
        history=True,
        known=(provisioning.after, provisioning.task),
    )


async def start_provisioning(session: AsyncSession, paid: Moved, *, region: str) -> Moved:
    """PAID → PROVISIONING and the task row: the durable hand-off to the provisioner.

    The task is written first so the `order.provisioning` event shows it; the
    order is still locked from the PAID move, so it is not locked and read again.
    """
    order = paid.after
    now = utcnow()
    task = (
        (
            await session.execute(
                _INSERT_TASK,
                {
                    "id": uuid.uuid4(),
                    "order_id": order["id"],
                    "status": TaskStatus.PENDING.value,
                    "do_region": region,
                    "do_size": order["do_size_slug"],
                    "do_image": order["do_image_slug"],
                    "attempts": 0,
                    "not_found_count": 0,
                    "created_at": now,
                    "updated_at": now,
                    "next_check_at": now,
                },
            )
        )
        .mappings()
        .one()
    )
    return await transition(
        session,
        order["id"],
        OrderStatus.PROVISIONING,
        actor=SYSTEM,
        reason="Provisioning queued",
        held=(order, dict(task)),
    )


async def cancel_order(
    session: AsyncSession,
    order_id: uuid.UUID,
    *,
    actor: str,
    owner: CurrentUser | None,
    reason: str | None,
) -> dict[str, Any]:
    def check_owner(order: OrderRow) -> None:
        if owner is not None and order["user_id"] != owner.id:
            raise OrderAccessDenied()

    await transition(
        session,
        order_id,
        OrderStatus.CANCELED,
        actor=actor,
        reason=reason or "Canceled",
        check=check_owner,
    )
    return await get_order(session, order_id, owner=None, history=owner is None)


async def retry_provisioning(
    session: AsyncSession,
    order_id: uuid.UUID,
    *,
    reason: str | None,
    wake_provisioner: Callable[[], None],
    actor: str = ADMIN,
) -> dict[str, Any]:
    """FAILED → PROVISIONING on the same task; the droplet is reused if it exists.

    The task is reset first, so the `order.provisioning` event shows it PENDING
    (not the failure it leaves behind); a refused move rolls the reset back.
    """
    now = utcnow()
    await session.execute(
        update(tasks_t)
        .where(tasks_t.c.order_id == order_id)
        .values(
            status=TaskStatus.PENDING.value,
            error_code=None,
            error_message=None,
            attempts=0,
            not_found_count=0,
            completed_at=None,
            requested_at=None,  # the deadline starts again
            started_at=None,
            lease_owner=None,
            lease_expires_at=None,
            next_check_at=now,
            updated_at=now,
        )
    )
    await transition(
        session,
        order_id,
        OrderStatus.PROVISIONING,
        actor=actor,
        reason=reason or "Provisioning retried",
    )
    on_commit(session, wake_provisioner)
    return await get_order(session, order_id, owner=None, history=True)
