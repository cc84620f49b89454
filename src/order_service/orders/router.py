"""User endpoints: /api/v1/orders (bearer JWT; the user is the token's `sub`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query
from starlette.responses import Response

from order_service.auth import User
from order_service.dependencies import Catalog, Idempotency, OrderId, Session
from order_service.jsonresponse import json_response
from order_service.openapi import error_responses
from order_service.orders import service
from order_service.orders.schemas import (
    ActionRequest,
    CreateOrderRequest,
    DataEnvelope,
    ListEnvelope,
    OrderOut,
)
from order_service.orders.states import OrderStatus

router = APIRouter(prefix="/api/v1/orders", tags=["orders"])

Page = Annotated[int, Query(ge=1, le=2_147_483_647, description="1-based page number")]
Limit = Annotated[int, Query(ge=1, le=100, description="orders per page (1-100)")]


@router.post(
    "",
    status_code=201,
    response_model=DataEnvelope[OrderOut],
    summary="Order a VPS",
    description=(
        "Prices the plan and image live from catalog-service and stores the snapshot. "
        "Send an `Idempotency-Key` to make retries safe: a retry with the same key and body "
        "replays the first response."
    ),
    responses=error_responses(400, 401, 409, 422, 503),
)
async def create_order(
    body: CreateOrderRequest,
    user: User,
    session: Session,
    catalog: Catalog,
    idempotency: Idempotency,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            description="Client-chosen key, unique per intended order; kept 24 h",
        ),
    ] = None,
) -> Response:
    result = await service.create_order(session, catalog, idempotency, user, body, idempotency_key)
    return json_response(result.body, result.status_code)


@router.get(
    "",
    response_model=ListEnvelope[OrderOut],
    summary="List my orders, newest first",
    responses=error_responses(400, 401),
)
async def list_my_orders(
    user: User,
    session: Session,
    page: Page = 1,
    limit: Limit = 10,
    status: Annotated[OrderStatus | None, Query(description="only this status")] = None,
) -> Response:
    return json_response(
        await service.list_orders(session, page=page, limit=limit, user_id=user.id, status=status)
    )


@router.get(
    "/{order_id}",
    response_model=DataEnvelope[OrderOut],
    summary="One of my orders, with items and provisioning task",
    responses=error_responses(401, 403, 404),
)
async def get_my_order(order_id: OrderId, user: User, session: Session) -> Response:
    return json_response(await service.get_order(session, order_id, owner=user, history=False))


@router.post(
    "/{order_id}/cancel",
    response_model=DataEnvelope[OrderOut],
    summary="Cancel my unpaid order",
    responses=error_responses(401, 403, 404, 409),
)
async def cancel_my_order(
    order_id: OrderId,
    user: User,
    session: Session,
    body: Annotated[ActionRequest | None, Body()] = None,
) -> Response:
    result: dict[str, Any] = await service.cancel_order(
        session, order_id, actor=user.actor, owner=user, reason=body.reason if body else None
    )
    return json_response(result)
