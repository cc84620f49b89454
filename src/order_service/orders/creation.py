"""Creating an order: price it, check the customer's server choices, write it.

Every question to a neighbour (catalog-service for the plan, image and coupon;
DO's lists for a chosen region) is asked before the first database statement,
so no connection is held while they answer and a neighbour that is down leaves
nothing half-written. Services flush but never commit: the request's session
dependency commits (or rolls back) the whole unit of work.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from order_service import metrics
from order_service.access.regions import RegionRules, chosen_region
from order_service.access.service import snapshot_keys
from order_service.auth import CurrentUser
from order_service.catalog.client import CatalogClient
from order_service.db import advisory_xact_lock, on_rollback, utcnow
from order_service.errors import SecretsKeyRequired, TooManyUnpaidOrders
from order_service.jsonresponse import dumps
from order_service.orders import quoting
from order_service.orders import repository as repo
from order_service.orders.idempotency import IdempotencyStore, StoredResponse, fingerprint
from order_service.orders.schemas import CreateOrderRequest
from order_service.orders.states import Access, OrderStatus
from order_service.orders.transitions import record_history
from order_service.orders.views import order_json

__all__ = ["ServerRules", "create_order", "item_row"]

# Built once: a statement built per call costs more than its round trip.
_INSERT_ORDER = insert(repo.orders_t)
_INSERT_ITEMS = insert(repo.items_t)


@dataclass(frozen=True)
class ServerRules:
    """What the customer's server choices are checked against (SPEC section 14)."""

    regions: RegionRules
    # SECRETS_KEY is set: a PASSWORD order's password can be kept (else 409).
    can_keep_passwords: bool


async def create_order(
    session: AsyncSession,
    catalog: CatalogClient,
    idempotency: IdempotencyStore,
    user: CurrentUser,
    request: CreateOrderRequest,
    idempotency_key: str | None,
    *,
    rules: ServerRules,
    max_unpaid: int = 0,
) -> StoredResponse:
    """Create an order (201), or replay the first response for a reused key.

    `max_unpaid` > 0: the user may hold at most that many PENDING_PAYMENT
    orders (429 TOO_MANY_UNPAID_ORDERS). A replay is not a new order and is
    never refused for it.
    """
    if idempotency_key is None:
        return await _create(session, catalog, user, request, rules, max_unpaid)
    replay = await idempotency.claim(user.id, idempotency_key, fingerprint(request.fingerprint()))
    if replay is not None:
        return replay
    # If the order does not commit, for whatever reason (the commit itself
    # included), the claim is released and the client may retry with the key.
    on_rollback(session, functools.partial(idempotency.release, user.id, idempotency_key))
    response = await _create(session, catalog, user, request, rules, max_unpaid)
    # The last statement of the transaction: the response commits with the order.
    await idempotency.complete(session, user.id, idempotency_key, response)
    return response


async def _create(
    session: AsyncSession,
    catalog: CatalogClient,
    user: CurrentUser,
    request: CreateOrderRequest,
    rules: ServerRules,
    max_unpaid: int,
) -> StoredResponse:
    access = Access.SSH_KEYS if request.ssh_key_ids else Access.PASSWORD
    if access == Access.PASSWORD and not rules.can_keep_passwords:
        # Refused before any question or write: such a deployment takes key orders only.
        raise SecretsKeyRequired(
            "Without SECRETS_KEY this service cannot keep a first-access password: "
            "order with sshKeyIds (your SSH keys) instead"
        )
    # Everything from the neighbours first: no database work (and no connection
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
    region = await chosen_region(rules.regions, plan, request.region)
    # The database from here on: the keys' copy is read, then the order written.
    keys = await snapshot_keys(session, user.id, request.ssh_key_ids or [])
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
        **quote.price_columns(),
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
        "hostname": request.hostname,
        "region": region,
        "access": access.value,
        "ssh_keys": keys,
        "plan_changed_at": None,
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
    rows and all pass. The lock is taken after the neighbours' answers, so no
    connection is held while they answer.
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
