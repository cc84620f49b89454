"""Renewal endpoints: the user's (/api/v1/orders/{id}/...) and ops' (/api/v1/internal/...)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Path, Query
from starlette.responses import Response

from order_service.auth import Internal, User, internal_caller
from order_service.dependencies import AppSettings, Catalog, Idempotency, OrderId, Session
from order_service.errors import (
    CatalogUnavailable,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidCoupon,
    InvalidDuration,
    InvalidPlan,
    OrderAccessDenied,
    OrderNotFound,
    OrderStatusConflict,
    PaymentStatusConflict,
    PlanChangePending,
    RenewalNotFound,
    RenewalPending,
    Unauthorized,
    ValidationFailed,
)
from order_service.jsonresponse import json_response
from order_service.openapi import error_responses
from order_service.orders.router import Limit, Page
from order_service.orders.schemas import DataEnvelope, ListEnvelope
from order_service.renewals import payment, service
from order_service.renewals.schemas import (
    CreateRenewalRequest,
    RenewalOut,
    RenewalPaymentRequest,
    RenewalQuoteOut,
)

router = APIRouter(prefix="/api/v1/orders", tags=["renewals"])
internal_router = APIRouter(
    prefix="/api/v1/internal", tags=["internal"], dependencies=[Depends(internal_caller)]
)


async def _renewal_id(
    renewal_id: Annotated[str, Path(description="Renewal id (UUID)")],
) -> uuid.UUID:
    return service.parse_renewal_id(renewal_id)


RenewalId = Annotated[uuid.UUID, Depends(_renewal_id)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Client-chosen key, unique per intended renewal; kept 24 h",
    ),
]
CREATE_ERRORS = (
    ValidationFailed,
    Unauthorized,
    OrderNotFound,
    OrderStatusConflict,
    RenewalPending,
    PlanChangePending,
    InvalidPlan,
    InvalidDuration,
    InvalidCoupon,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    CatalogUnavailable,
)
CREATE_DESCRIPTION = (
    "Priced live from catalog-service like an order: the plan's active price for the order's "
    "duration x `periods`, the best promo running now, the coupon validated again. The order "
    "must be ACTIVE or SUSPENDED (else 409 ORDER_STATUS_CONFLICT); an order has at most one "
    "unpaid renewal (409 RENEWAL_PENDING, `details.renewalId`), and none while a plan change "
    "is unpaid or running (409 PLAN_CHANGE_PENDING). `Idempotency-Key` works as for orders."
)


@router.get(
    "/{order_id}/renewal-quote",
    response_model=DataEnvelope[RenewalQuoteOut],
    summary="What renewing my order costs now",
    response_description="The price and the period end if paid now; nothing is stored",
    responses=error_responses(
        ValidationFailed,
        Unauthorized,
        OrderAccessDenied,
        OrderNotFound,
        OrderStatusConflict,
        InvalidPlan,
        InvalidDuration,
        InvalidCoupon,
        CatalogUnavailable,
    ),
)
async def renewal_quote(
    order_id: OrderId,
    user: User,
    session: Session,
    catalog: Catalog,
    periods: Annotated[int, Query(ge=1, le=12, description="periods to add (1-12)")] = 1,
    coupon_code: Annotated[
        str | None, Query(alias="couponCode", min_length=1, max_length=64, pattern=r"^[^\x00]*$")
    ] = None,
) -> Response:
    return json_response(
        await service.quote_renewal(
            session, catalog, order_id, owner=user.id, periods=periods, coupon_code=coupon_code
        )
    )


@router.post(
    "/{order_id}/renewals",
    status_code=201,
    response_model=DataEnvelope[RenewalOut],
    summary="Renew my order (a renewal awaiting payment)",
    response_description="The renewal, PENDING_PAYMENT",
    description=CREATE_DESCRIPTION,
    responses=error_responses(*CREATE_ERRORS, OrderAccessDenied),
)
async def create_my_renewal(
    order_id: OrderId,
    user: User,
    session: Session,
    catalog: Catalog,
    idempotency: Idempotency,
    idempotency_key: IdempotencyKey = None,
    body: Annotated[CreateRenewalRequest | None, Body()] = None,
) -> Response:
    result = await service.create_renewal(
        session,
        catalog,
        idempotency,
        order_id,
        body or CreateRenewalRequest(),
        owner=user.id,
        actor=user.actor,
        scope=user.id,
        idempotency_key=idempotency_key,
    )
    return json_response(result.body, result.status_code)


@router.get(
    "/{order_id}/renewals",
    response_model=ListEnvelope[RenewalOut],
    summary="My order's renewals, newest first",
    response_description="One page of renewals and the paging meta",
    responses=error_responses(ValidationFailed, Unauthorized, OrderAccessDenied, OrderNotFound),
)
async def list_my_renewals(
    order_id: OrderId, user: User, session: Session, page: Page = 1, limit: Limit = 10
) -> Response:
    return json_response(
        await service.list_renewals(session, order_id, owner=user.id, page=page, limit=limit)
    )


@router.post(
    "/{order_id}/renewals/{renewal_id}/cancel",
    response_model=DataEnvelope[RenewalOut],
    summary="Cancel my unpaid renewal",
    response_description="The renewal, now CANCELED",
    description="PENDING_PAYMENT → CANCELED; a PAID or CANCELED renewal is 409.",
    responses=error_responses(
        ValidationFailed,
        Unauthorized,
        OrderAccessDenied,
        OrderNotFound,
        RenewalNotFound,
        OrderStatusConflict,
    ),
)
async def cancel_my_renewal(
    order_id: OrderId, renewal_id: RenewalId, user: User, session: Session
) -> Response:
    return json_response(await service.cancel_renewal(session, order_id, renewal_id, owner=user.id))


@internal_router.post(
    "/orders/{order_id}/renewals",
    status_code=201,
    response_model=DataEnvelope[RenewalOut],
    summary="Create a renewal for the order's owner",
    response_description="The renewal, PENDING_PAYMENT",
    description=CREATE_DESCRIPTION + " Keys are scoped to the operator key.",
    responses=error_responses(*CREATE_ERRORS),
)
async def create_renewal(
    order_id: OrderId,
    caller: Internal,
    session: Session,
    catalog: Catalog,
    idempotency: Idempotency,
    idempotency_key: IdempotencyKey = None,
    body: Annotated[CreateRenewalRequest | None, Body()] = None,
) -> Response:
    result = await service.create_renewal(
        session,
        catalog,
        idempotency,
        order_id,
        body or CreateRenewalRequest(),
        owner=None,
        actor=caller.actor,
        # Operators' keys live apart from users' (as for server actions).
        scope=f"internal:{caller.actor}",
        idempotency_key=idempotency_key,
    )
    return json_response(result.body, result.status_code)


@internal_router.post(
    "/renewals/{renewal_id}/payment-status",
    response_model=DataEnvelope[RenewalOut],
    summary="Mark a renewal's payment: PAID extends the order",
    response_description="The renewal after the change",
    description=(
        "`PAID`, in one transaction: the renewal is PAID with previousExpiresAt and "
        "newExpiresAt = max(expiresAt, now) + periods x duration; the order's expiresAt moves "
        "(event RENEWED), a scheduled cancellation is taken back, and an order SUSPENDED for "
        "EXPIRED becomes ACTIVE and its droplet is powered on (an ADMIN suspension stays). "
        "`PAYMENT_FAILED`: an event; the renewal stays PENDING_PAYMENT. A renewal not "
        "PENDING_PAYMENT is 409 PAYMENT_STATUS_CONFLICT."
    ),
    responses=error_responses(
        ValidationFailed, Unauthorized, RenewalNotFound, PaymentStatusConflict
    ),
)
async def set_renewal_payment_status(
    renewal_id: RenewalId,
    body: RenewalPaymentRequest,
    caller: Internal,
    session: Session,
    settings: AppSettings,
) -> Response:
    return json_response(
        await payment.set_payment_status(
            session,
            renewal_id,
            body.status,
            body.notes,
            actor=caller.actor,
            reminders=settings.expiry_reminders,
        )
    )
