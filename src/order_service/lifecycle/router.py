"""Lifecycle endpoints: ops' expiry/suspend/unsuspend/terminate and the user's uncancel.

The user's `POST /api/v1/orders/{id}/cancel` stays in orders/router.py and
calls `lifecycle.service.cancel`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends
from starlette.responses import Response

from order_service.auth import Internal, User, internal_caller
from order_service.dependencies import AppSettings, OrderId, Session
from order_service.errors import (
    OrderAccessDenied,
    OrderNotFound,
    OrderStatusConflict,
    Unauthorized,
    ValidationFailed,
)
from order_service.jsonresponse import json_response
from order_service.lifecycle import service
from order_service.lifecycle.schemas import ExpiryRequest
from order_service.openapi import error_responses
from order_service.orders.schemas import ActionRequest, DataEnvelope, OrderOut

router = APIRouter(prefix="/api/v1/orders", tags=["orders"])
internal_router = APIRouter(
    prefix="/api/v1/internal/orders", tags=["internal"], dependencies=[Depends(internal_caller)]
)

OPS_ERRORS = error_responses(ValidationFailed, Unauthorized, OrderNotFound, OrderStatusConflict)
Reason = Annotated[ActionRequest | None, Body()]


@router.delete(
    "/{order_id}/cancel",
    response_model=DataEnvelope[OrderOut],
    summary="Take back my scheduled cancellation",
    response_description="The order, cancelAtPeriodEnd false again",
    description="Event CANCEL_UNSCHEDULED; no cancellation scheduled is 409.",
    responses=error_responses(
        ValidationFailed, Unauthorized, OrderAccessDenied, OrderNotFound, OrderStatusConflict
    ),
)
async def uncancel_my_order(
    order_id: OrderId, user: User, session: Session, body: Reason = None
) -> Response:
    return json_response(
        await service.uncancel(session, order_id, user=user, reason=body.reason if body else None)
    )


@internal_router.post(
    "/{order_id}/expiry",
    response_model=DataEnvelope[OrderOut],
    summary="Set the end of an ACTIVE or SUSPENDED order's period",
    response_description="The order with its status history",
    description=(
        "Event EXPIRY_CHANGED. A date in the past lets the next lifecycle scan act on the "
        "order (suspension after SUSPEND_GRACE, or the scheduled cancellation). The period's "
        "EXPIRING reminders count again from the new end."
    ),
    responses=OPS_ERRORS,
)
async def set_expiry(
    order_id: OrderId,
    body: ExpiryRequest,
    caller: Internal,
    session: Session,
    settings: AppSettings,
) -> Response:
    return json_response(
        await service.set_expiry(
            session,
            order_id,
            body.expires_at,
            actor=caller.actor,
            reason=body.reason,
            reminders=settings.expiry_reminders,
        )
    )


@internal_router.post(
    "/{order_id}/suspend",
    response_model=DataEnvelope[OrderOut],
    summary="Suspend an ACTIVE order (ADMIN): the droplet is turned off",
    response_description="The order, SUSPENDED, with its status history",
    description=(
        "ACTIVE → SUSPENDED (`suspensionReason: ADMIN`): a SHUTDOWN action now and a POWER_OFF "
        "after SHUTDOWN_GRACE if the droplet is not off by then. The service never lifts an "
        "ADMIN suspension: `unsuspend` does."
    ),
    responses=OPS_ERRORS,
)
async def suspend(
    order_id: OrderId,
    caller: Internal,
    session: Session,
    settings: AppSettings,
    body: Reason = None,
) -> Response:
    return json_response(
        await service.suspend(
            session,
            order_id,
            actor=caller.actor,
            reason=body.reason if body else None,
            shutdown_grace=settings.shutdown_grace,
        )
    )


@internal_router.post(
    "/{order_id}/unsuspend",
    response_model=DataEnvelope[OrderOut],
    summary="Lift a suspension: the droplet is powered on",
    response_description="The order, ACTIVE, with its status history",
    description=(
        "SUSPENDED → ACTIVE and a POWER_ON action. 409 when expiresAt is past: renew the order "
        "or set its expiry first."
    ),
    responses=OPS_ERRORS,
)
async def unsuspend(
    order_id: OrderId, caller: Internal, session: Session, body: Reason = None
) -> Response:
    return json_response(
        await service.unsuspend(
            session, order_id, actor=caller.actor, reason=body.reason if body else None
        )
    )


@internal_router.post(
    "/{order_id}/terminate",
    response_model=DataEnvelope[OrderOut],
    summary="Terminate now (ADMIN): the droplet is destroyed",
    response_description="The order, TERMINATED, with its status history",
    description=(
        "ACTIVE, SUSPENDED or FAILED → TERMINATED (`terminationReason: ADMIN`): a DESTROY "
        "action, the open renewal canceled, pending user actions superseded. History stays."
    ),
    responses=OPS_ERRORS,
)
async def terminate(
    order_id: OrderId, caller: Internal, session: Session, body: Reason = None
) -> Response:
    return json_response(
        await service.terminate(
            session, order_id, actor=caller.actor, reason=body.reason if body else None
        )
    )
