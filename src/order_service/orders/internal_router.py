"""Ops endpoints: /api/v1/internal/orders (X-API-Key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query
from starlette.responses import Response

from order_service.auth import internal_caller
from order_service.dependencies import AppSettings, OrderId, Session, WakeProvisioner
from order_service.jsonresponse import json_response
from order_service.openapi import error_responses
from order_service.orders import service
from order_service.orders.router import Limit, Page
from order_service.orders.schemas import (
    ActionRequest,
    DataEnvelope,
    ListEnvelope,
    OrderOut,
    PaymentStatusRequest,
)
from order_service.orders.states import OrderStatus
from order_service.orders.transitions import ADMIN

router = APIRouter(
    prefix="/api/v1/internal/orders",
    tags=["internal"],
    dependencies=[Depends(internal_caller)],
)


@router.post(
    "/{order_id}/payment-status",
    response_model=DataEnvelope[OrderOut],
    summary="Mark the payment: PAID starts provisioning, PAYMENT_FAILED is recorded",
    responses=error_responses(400, 401, 404, 409),
)
async def set_payment_status(
    order_id: OrderId,
    body: PaymentStatusRequest,
    session: Session,
    settings: AppSettings,
    wake: WakeProvisioner,
) -> Response:
    result = await service.set_payment_status(
        session,
        order_id,
        body.status,
        body.notes,
        region=settings.digitalocean_default_region,
        wake_provisioner=wake,
    )
    return json_response(result)


@router.get(
    "",
    response_model=ListEnvelope[OrderOut],
    summary="All orders, newest first",
    responses=error_responses(400, 401),
)
async def list_all_orders(
    session: Session,
    page: Page = 1,
    limit: Limit = 10,
    status: Annotated[OrderStatus | None, Query(description="only this status")] = None,
    user_id: Annotated[
        str | None, Query(alias="userId", max_length=255, description="only this user's orders")
    ] = None,
) -> Response:
    return json_response(
        await service.list_orders(session, page=page, limit=limit, user_id=user_id, status=status)
    )


@router.get(
    "/{order_id}",
    response_model=DataEnvelope[OrderOut],
    summary="Full detail: items, provisioning task and status history (oldest first)",
    responses=error_responses(401, 404),
)
async def get_order_detail(order_id: OrderId, session: Session) -> Response:
    return json_response(await service.get_order(session, order_id, owner=None, history=True))


@router.post(
    "/{order_id}/cancel",
    response_model=DataEnvelope[OrderOut],
    summary="Cancel an unpaid order",
    responses=error_responses(401, 404, 409),
)
async def cancel_order(
    order_id: OrderId,
    session: Session,
    body: Annotated[ActionRequest | None, Body()] = None,
) -> Response:
    return json_response(
        await service.cancel_order(
            session, order_id, actor=ADMIN, owner=None, reason=body.reason if body else None
        )
    )


@router.post(
    "/{order_id}/retry-provisioning",
    response_model=DataEnvelope[OrderOut],
    summary="Retry a failed provisioning (reuses the droplet if one exists)",
    responses=error_responses(401, 404, 409),
)
async def retry_provisioning(
    order_id: OrderId,
    session: Session,
    wake: WakeProvisioner,
    body: Annotated[ActionRequest | None, Body()] = None,
) -> Response:
    return json_response(
        await service.retry_provisioning(
            session, order_id, reason=body.reason if body else None, wake_provisioner=wake
        )
    )
