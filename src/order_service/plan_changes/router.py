"""Plan change endpoints: the user's (/api/v1/orders/{id}/...) and ops' (/api/v1/internal/...)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from order_service.accounts.do_catalog import DoCatalog
from order_service.auth import Internal, User, internal_caller
from order_service.dependencies import Catalog, Idempotency, OrderId, Session
from order_service.errors import (
    CatalogUnavailable,
    DigitalOceanUnavailable,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidDuration,
    InvalidPlan,
    OrderAccessDenied,
    OrderNotFound,
    OrderStatusConflict,
    PaymentStatusConflict,
    PlanChangeNotFound,
    PlanChangeNotPossible,
    PlanChangePending,
    RenewalPending,
    ServiceSuspended,
    Unauthorized,
    ValidationFailed,
)
from order_service.jsonresponse import json_response
from order_service.openapi import error_responses
from order_service.orders.router import Limit, Page
from order_service.orders.schemas import DataEnvelope, ListEnvelope
from order_service.plan_changes import payment, service
from order_service.plan_changes.schemas import (
    CreatePlanChangeRequest,
    PlanChangeOut,
    PlanChangePaymentRequest,
    PlanChangeQuoteOut,
)
from order_service.renewals.router import IdempotencyKey

router = APIRouter(prefix="/api/v1/orders", tags=["plan-changes"])
internal_router = APIRouter(
    prefix="/api/v1/internal", tags=["internal"], dependencies=[Depends(internal_caller)]
)


async def _do_catalog(request: Request) -> DoCatalog:
    return request.app.state.do_catalog


async def _change_id(
    plan_change_id: Annotated[str, Path(description="Plan change id (UUID)")],
) -> uuid.UUID:
    return service.parse_plan_change_id(plan_change_id)


async def _plan_id(
    plan_id: Annotated[
        str, Query(alias="planId", min_length=1, max_length=64, description="the plan to move to")
    ],
) -> str:
    try:
        return str(uuid.UUID(plan_id))
    except ValueError:
        raise ValidationFailed(
            details={"fields": [{"field": "planId", "in": "query", "message": "must be a UUID"}]}
        ) from None


DoOffer = Annotated[DoCatalog, Depends(_do_catalog)]
PlanChangeId = Annotated[uuid.UUID, Depends(_change_id)]
PlanId = Annotated[str, Depends(_plan_id)]

PRICE_ERRORS = (
    ValidationFailed,
    Unauthorized,
    OrderNotFound,
    ServiceSuspended,
    OrderStatusConflict,
    InvalidPlan,
    InvalidDuration,
    PlanChangeNotPossible,
    CatalogUnavailable,
    DigitalOceanUnavailable,
)
CREATE_ERRORS = (
    *PRICE_ERRORS,
    PlanChangePending,
    RenewalPending,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
)
PRICE_RULE = (
    "`oldPrice` / `newPrice`: each plan's live catalog price for the order's duration after "
    "its best active promo (no coupon). `amountDue` = max(0, floor((newPrice - oldPrice) x "
    "remainingSeconds / periodSeconds)), where remainingSeconds = expiresAt - now and "
    "periodSeconds = one duration ending at expiresAt (calendar months); a cheaper plan costs "
    "0 (no credit). Refused: an order not ACTIVE (SUSPENDED: 409 SERVICE_SUSPENDED), the "
    "order's own plan (400), a plan that cannot take the server (409 PLAN_CHANGE_NOT_POSSIBLE, "
    "`details.reason` DISK_TOO_SMALL, SIZE_NOT_IN_REGION or IMAGE_NOT_ALLOWED)."
)
CREATE_DESCRIPTION = (
    "Priced as the quote. `amountDue` > 0: PENDING_PAYMENT until ops mark it PAID; 0: PAID at "
    "once. Once PAID, a system RESIZE action (follow it under `/actions`) shuts the server "
    "down, resizes it and powers it on; the order takes the new plan when DO is done. One open "
    "plan change per order (409 PLAN_CHANGE_PENDING, `details.planChangeId`); an unpaid "
    "renewal first is 409 RENEWAL_PENDING. `Idempotency-Key` works as for orders. " + PRICE_RULE
)
CANCEL_ERRORS = (
    ValidationFailed,
    Unauthorized,
    OrderNotFound,
    PlanChangeNotFound,
    OrderStatusConflict,
)


@router.get(
    "/{order_id}/plan-change-quote",
    response_model=DataEnvelope[PlanChangeQuoteOut],
    summary="What moving my order to another plan costs now",
    response_description="Both prices and the prorated amount due; nothing is stored",
    description=PRICE_RULE,
    responses=error_responses(*PRICE_ERRORS, OrderAccessDenied),
)
async def plan_change_quote(
    order_id: OrderId,
    plan_id: PlanId,
    user: User,
    session: Session,
    catalog: Catalog,
    do_catalog: DoOffer,
) -> Response:
    return json_response(
        await service.quote_plan_change(
            session, catalog, do_catalog, order_id, plan_id, owner=user.id
        )
    )


@router.post(
    "/{order_id}/plan-changes",
    status_code=201,
    response_model=DataEnvelope[PlanChangeOut],
    summary="Move my order to another plan",
    response_description="The plan change: PENDING_PAYMENT, or PAID when nothing is due",
    description=CREATE_DESCRIPTION,
    responses=error_responses(*CREATE_ERRORS, OrderAccessDenied),
)
async def create_my_plan_change(
    order_id: OrderId,
    body: CreatePlanChangeRequest,
    user: User,
    session: Session,
    catalog: Catalog,
    do_catalog: DoOffer,
    idempotency: Idempotency,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    result = await service.create_plan_change(
        session,
        catalog,
        do_catalog,
        idempotency,
        order_id,
        body,
        owner=user.id,
        actor=user.actor,
        scope=user.id,
        idempotency_key=idempotency_key,
    )
    return json_response(result.body, result.status_code)


@router.get(
    "/{order_id}/plan-changes",
    response_model=ListEnvelope[PlanChangeOut],
    summary="My order's plan changes, newest first",
    response_description="One page of plan changes and the paging meta",
    responses=error_responses(ValidationFailed, Unauthorized, OrderAccessDenied, OrderNotFound),
)
async def list_my_plan_changes(
    order_id: OrderId, user: User, session: Session, page: Page = 1, limit: Limit = 10
) -> Response:
    return json_response(
        await service.list_plan_changes(session, order_id, owner=user.id, page=page, limit=limit)
    )


@router.post(
    "/{order_id}/plan-changes/{plan_change_id}/cancel",
    response_model=DataEnvelope[PlanChangeOut],
    summary="Cancel my unpaid plan change",
    response_description="The plan change, now CANCELED",
    description="PENDING_PAYMENT → CANCELED; a paid (resizing), finished or canceled one is 409.",
    responses=error_responses(*CANCEL_ERRORS, OrderAccessDenied),
)
async def cancel_my_plan_change(
    order_id: OrderId, plan_change_id: PlanChangeId, user: User, session: Session
) -> Response:
    return json_response(
        await service.cancel_plan_change(session, order_id, plan_change_id, owner=user.id)
    )


# ---------------------------------------------------------------- ops


@internal_router.get(
    "/orders/{order_id}/plan-change-quote",
    response_model=DataEnvelope[PlanChangeQuoteOut],
    summary="What moving the order to another plan costs now",
    response_description="Both prices and the prorated amount due; nothing is stored",
    description=PRICE_RULE,
    responses=error_responses(*PRICE_ERRORS),
)
async def ops_plan_change_quote(
    order_id: OrderId, plan_id: PlanId, session: Session, catalog: Catalog, do_catalog: DoOffer
) -> Response:
    return json_response(
        await service.quote_plan_change(session, catalog, do_catalog, order_id, plan_id, owner=None)
    )


@internal_router.post(
    "/orders/{order_id}/plan-changes",
    status_code=201,
    response_model=DataEnvelope[PlanChangeOut],
    summary="Move the order to another plan (for its owner)",
    response_description="The plan change: PENDING_PAYMENT, or PAID when nothing is due",
    description=CREATE_DESCRIPTION + " Keys are scoped to the operator key.",
    responses=error_responses(*CREATE_ERRORS),
)
async def create_plan_change(
    order_id: OrderId,
    body: CreatePlanChangeRequest,
    caller: Internal,
    session: Session,
    catalog: Catalog,
    do_catalog: DoOffer,
    idempotency: Idempotency,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    result = await service.create_plan_change(
        session,
        catalog,
        do_catalog,
        idempotency,
        order_id,
        body,
        owner=None,
        actor=caller.actor,
        scope=f"internal:{caller.actor}",
        idempotency_key=idempotency_key,
    )
    return json_response(result.body, result.status_code)


@internal_router.get(
    "/orders/{order_id}/plan-changes",
    response_model=ListEnvelope[PlanChangeOut],
    summary="The order's plan changes, newest first",
    response_description="One page of plan changes and the paging meta",
    responses=error_responses(ValidationFailed, Unauthorized, OrderNotFound),
)
async def list_plan_changes(
    order_id: OrderId, session: Session, page: Page = 1, limit: Limit = 10
) -> Response:
    return json_response(
        await service.list_plan_changes(session, order_id, owner=None, page=page, limit=limit)
    )


@internal_router.post(
    "/orders/{order_id}/plan-changes/{plan_change_id}/cancel",
    response_model=DataEnvelope[PlanChangeOut],
    summary="Cancel the order's unpaid plan change",
    response_description="The plan change, now CANCELED",
    description="PENDING_PAYMENT → CANCELED; a paid (resizing), finished or canceled one is 409.",
    responses=error_responses(*CANCEL_ERRORS),
)
async def cancel_plan_change(
    order_id: OrderId, plan_change_id: PlanChangeId, session: Session
) -> Response:
    return json_response(
        await service.cancel_plan_change(session, order_id, plan_change_id, owner=None)
    )


@internal_router.post(
    "/plan-changes/{plan_change_id}/payment-status",
    response_model=DataEnvelope[PlanChangeOut],
    summary="Mark a plan change's payment: PAID starts the resize",
    response_description="The plan change after the change",
    description=(
        "`PAID`, in one transaction: the plan change is PAID and a system RESIZE action is "
        "queued (`actionId`); the order must be ACTIVE. `PAYMENT_FAILED`: an event "
        "(plan_change.payment_failed); the change stays PENDING_PAYMENT. A plan change not "
        "PENDING_PAYMENT is 409 PAYMENT_STATUS_CONFLICT (of two racing PAIDs, one wins)."
    ),
    responses=error_responses(
        ValidationFailed, Unauthorized, PlanChangeNotFound, PaymentStatusConflict
    ),
)
async def set_plan_change_payment_status(
    plan_change_id: PlanChangeId,
    body: PlanChangePaymentRequest,
    session: Session,
) -> Response:
    return json_response(
        await payment.set_payment_status(session, plan_change_id, body.status, body.notes)
    )
