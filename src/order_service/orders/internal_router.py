"""Ops endpoints: /api/v1/internal/orders (X-API-Key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query
from starlette.responses import Response

from order_service.auth import Internal, internal_caller
from order_service.dependencies import (
    AppSettings,
    OrderId,
    ReadSession,
    Session,
    WakeProvisioner,
)
from order_service.errors import (
    OrderNotFound,
    OrderStatusConflict,
    PaymentStatusConflict,
    Unauthorized,
    ValidationFailed,
)
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

PAYMENT_EXAMPLES = {
    "paid": {
        "summary": "Payment received: provisioning starts",
        "value": {"status": "PAID", "notes": "BCA transfer #8812"},
    },
    "payment_failed": {
        "summary": "Payment failed: recorded, the order keeps waiting for payment",
        "value": {"status": "PAYMENT_FAILED", "notes": "card declined"},
    },
}
PREFIX = "/api/v1/internal/orders"
PAYMENT_STATUS = "/{order_id}/payment-status"
# The path PAYMENT_CONCURRENCY admits at the door (admission.py).
PAYMENT_STATUS_PATH = PREFIX + PAYMENT_STATUS

router = APIRouter(
    prefix=PREFIX,
    tags=["internal"],
    dependencies=[Depends(internal_caller)],
)


@router.post(
    PAYMENT_STATUS,
    response_model=DataEnvelope[OrderOut],
    summary="Mark the payment: PAID starts provisioning, PAYMENT_FAILED is recorded",
    response_description="The order after the change, with its status history",
    description=(
        "`PAID`: PENDING_PAYMENT → PAID → PROVISIONING and the provisioning task, in one "
        "transaction (the answer already shows PROVISIONING). `PAYMENT_FAILED`: the order stays "
        "PENDING_PAYMENT and a history row records the event. Any status other than "
        "PENDING_PAYMENT is 409 PAYMENT_STATUS_CONFLICT."
    ),
    responses=error_responses(ValidationFailed, Unauthorized, OrderNotFound, PaymentStatusConflict),
)
async def set_payment_status(
    order_id: OrderId,
    body: Annotated[PaymentStatusRequest, Body(openapi_examples=PAYMENT_EXAMPLES)],
    session: Session,
    settings: AppSettings,
    wake: WakeProvisioner,
    caller: Internal,
) -> Response:
    result = await service.set_payment_status(
        session,
        order_id,
        body.status,
        body.notes,
        region=settings.digitalocean_default_region,
        wake_provisioner=wake,
        actor=caller.actor,
    )
    return json_response(result)


@router.get(
    "",
    response_model=ListEnvelope[OrderOut],
    summary="All orders, newest first",
    response_description="One page of orders (any user) and the paging meta",
    responses=error_responses(ValidationFailed, Unauthorized),
)
async def list_all_orders(
    session: ReadSession,
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
    response_description="The order with statusHistory",
    responses=error_responses(ValidationFailed, Unauthorized, OrderNotFound),
)
async def get_order_detail(order_id: OrderId, session: ReadSession) -> Response:
    return json_response(await service.get_order(session, order_id, owner=None, history=True))


@router.post(
    "/{order_id}/cancel",
    response_model=DataEnvelope[OrderOut],
    summary="Cancel an unpaid order",
    response_description="The order, now CANCELED, with its status history",
    description=(
        "PENDING_PAYMENT → CANCELED (actor `admin`, or `admin:<name>` for a named key of "
        "INTERNAL_API_KEYS); otherwise 409 ORDER_STATUS_CONFLICT."
    ),
    responses=error_responses(ValidationFailed, Unauthorized, OrderNotFound, OrderStatusConflict),
)
async def cancel_order(
    order_id: OrderId,
    session: Session,
    caller: Internal,
    body: Annotated[ActionRequest | None, Body()] = None,
) -> Response:
    return json_response(
        await service.cancel_order(
            session, order_id, actor=caller.actor, owner=None, reason=body.reason if body else None
        )
    )


@router.post(
    "/{order_id}/retry-provisioning",
    response_model=DataEnvelope[OrderOut],
    summary="Retry a failed provisioning (reuses the droplet if one exists)",
    response_description="The order, PROVISIONING again, with its status history",
    description=(
        "FAILED → PROVISIONING on the same task: the error is cleared, the deadline starts "
        "again, and the droplet already recorded is kept if DigitalOcean still has it. Any "
        "other status is 409 ORDER_STATUS_CONFLICT."
    ),
    responses=error_responses(ValidationFailed, Unauthorized, OrderNotFound, OrderStatusConflict),
)
async def retry_provisioning(
    order_id: OrderId,
    session: Session,
    wake: WakeProvisioner,
    caller: Internal,
    body: Annotated[ActionRequest | None, Body()] = None,
) -> Response:
    return json_response(
        await service.retry_provisioning(
            session,
            order_id,
            reason=body.reason if body else None,
            wake_provisioner=wake,
            actor=caller.actor,
        )
    )
