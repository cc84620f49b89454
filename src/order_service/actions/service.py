"""Server-action use cases: request one, list an order's, read one (SPEC section 10).

Services flush but never commit: the request's session dependency commits
the action, its `action.requested` event and the idempotent response
together, before the 202 is sent.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import RowMapping, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from order_service.actions.models import ServerAction
from order_service.actions.schemas import CreateActionRequest
from order_service.actions.writer import action_json, enqueue_action, unfinished_action
from order_service.auth import CurrentUser
from order_service.catalog.client import CatalogClient
from order_service.db import on_rollback
from order_service.errors import (
    ActionInProgress,
    ActionNotFound,
    InvalidImage,
    OrderAccessDenied,
    OrderNotFound,
    OrderStatusConflict,
    ServiceSuspended,
)
from order_service.jsonresponse import dumps
from order_service.orders import repository as repo
from order_service.orders.idempotency import IdempotencyStore, StoredResponse, fingerprint
from order_service.orders.states import ActionType, OrderStatus
from order_service.orders.views import page_meta

actions_t = ServerAction.__table__

USER_STATUSES = frozenset({OrderStatus.ACTIVE.value})
OPS_STATUSES = frozenset({OrderStatus.ACTIVE.value, OrderStatus.SUSPENDED.value})


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks: a user (owner set, ACTIVE orders only) or an operator."""

    actor: str
    # Idempotency-Keys are kept per scope: the user's id, or the operator's actor.
    scope: str
    owner: CurrentUser | None

    @classmethod
    def user(cls, user: CurrentUser) -> Caller:
        return cls(actor=user.actor, scope=user.id, owner=user)

    @classmethod
    def operator(cls, actor: str) -> Caller:
        return cls(actor=actor, scope=f"internal:{actor}", owner=None)


async def request_action(
    session: AsyncSession,
    catalog: CatalogClient,
    idempotency: IdempotencyStore,
    order_id: uuid.UUID,
    request: CreateActionRequest,
    caller: Caller,
    idempotency_key: str | None,
    *,
    route: str,
) -> StoredResponse:
    """Queue the action (202), or replay the first response for a reused key."""
    if idempotency_key is None:
        return await _request(session, catalog, order_id, request, caller)
    claim_hash = fingerprint(request.fingerprint(route))
    replay = await idempotency.claim(caller.scope, idempotency_key, claim_hash)
    if replay is not None:
        return replay
    on_rollback(session, functools.partial(idempotency.release, caller.scope, idempotency_key))
    response = await _request(session, catalog, order_id, request, caller)
    await idempotency.complete(session, caller.scope, idempotency_key, response)
    return response


async def _request(
    session: AsyncSession,
    catalog: CatalogClient,
    order_id: uuid.UUID,
    request: CreateActionRequest,
    caller: Caller,
) -> StoredResponse:
    action_type = ActionType(request.type)
    image: dict[str, str] | None = None
    if action_type is ActionType.REBUILD:
        # A short read, ended before catalog is asked: no connection or lock is
        # held while catalog answers. Everything is checked again under the lock.
        order = await _order_or_raise(session, order_id, caller)
        _check_status(order, caller)
        await session.commit()
        image = await _rebuild_image(catalog, order["plan_id"], request.image_id)
    order = await repo.lock_order(session, order_id)
    if order is None:
        raise OrderNotFound()
    _check_owner(order, caller)
    _check_status(order, caller)
    # Under the order's row lock: two racing requests cannot both pass.
    running = await unfinished_action(session, order_id)
    if running is not None:
        raise ActionInProgress(
            f"Action {running['id']} ({running['type']}) is {running['status']}",
            details={"actionId": str(running["id"])},
        )
    row = await enqueue_action(
        session,
        order_id,
        action_type,
        requested_by=caller.actor,
        reason=request.reason,
        image=image,
    )
    body = {"data": action_json(row)}
    return StoredResponse(202, orjson.loads(dumps(body)))


async def _order_or_raise(session: AsyncSession, order_id: uuid.UUID, caller: Caller) -> RowMapping:
    found = await repo.get_order_with_task(session, order_id)
    if found is None:
        raise OrderNotFound()
    order = found[0]
    _check_owner(order, caller)
    return order


def _check_owner(order: RowMapping | dict[str, Any], caller: Caller) -> None:
    if caller.owner is not None and order["user_id"] != caller.owner.id:
        raise OrderAccessDenied()


def _check_status(order: RowMapping | dict[str, Any], caller: Caller) -> None:
    status = order["status"]
    allowed = USER_STATUSES if caller.owner is not None else OPS_STATUSES
    if status in allowed:
        return
    if caller.owner is not None and status == OrderStatus.SUSPENDED.value:
        raise ServiceSuspended(
            "The service is suspended: renew it (or contact support) before acting on the server",
            details={"currentStatus": status},
        )
    raise OrderStatusConflict(
        f"Server actions need an {' or '.join(sorted(allowed))} order; this one is {status}",
        details={"currentStatus": status},
    )


async def _rebuild_image(
    catalog: CatalogClient, plan_id: str, image_id: str | None
) -> dict[str, str]:
    """The image a REBUILD installs: active in catalog and allowed for the order's plan."""
    if image_id is None:
        raise InvalidImage("REBUILD needs an imageId", details={"imageId": None})
    plan, image = await asyncio.gather(catalog.get_plan(plan_id), catalog.get_image(image_id))
    if image is None or not image.is_active:
        raise InvalidImage(details={"imageId": image_id})
    if plan is None or image.id not in plan.allowed_image_ids:
        raise InvalidImage(
            f"Image {image.display_name} is not available for this order's plan",
            details={"imageId": image_id, "planId": plan_id},
        )
    return {"id": image.id, "name": image.display_name, "slug": image.provider_slug}


# ---------------------------------------------------------------- read


async def list_actions(
    session: AsyncSession, order_id: uuid.UUID, caller: Caller, *, page: int, limit: int
) -> dict[str, Any]:
    """The order's actions, newest first (the system's included)."""
    await _order_or_raise(session, order_id, caller)
    total = await session.scalar(
        select(func.count()).select_from(actions_t).where(actions_t.c.order_id == order_id)
    )
    rows = (
        await session.execute(
            select(actions_t)
            .where(actions_t.c.order_id == order_id)
            .order_by(actions_t.c.created_at.desc(), actions_t.c.id.desc())
            .limit(limit)
            .offset((page - 1) * limit)
        )
    ).mappings()
    return {"data": [action_json(row) for row in rows], "meta": page_meta(page, limit, total or 0)}


async def get_action(
    session: AsyncSession, order_id: uuid.UUID, action_id: str, caller: Caller
) -> dict[str, Any]:
    await _order_or_raise(session, order_id, caller)
    try:
        parsed = uuid.UUID(action_id)
    except ValueError:
        raise ActionNotFound() from None
    row = (
        (
            await session.execute(
                select(actions_t).where(actions_t.c.id == parsed, actions_t.c.order_id == order_id)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise ActionNotFound()
    return {"data": action_json(row)}
