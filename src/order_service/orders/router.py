"""User endpoints: /api/v1/orders (bearer JWT; the user is the token's `sub`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query
from starlette.responses import Response

from order_service.auth import User
from order_service.dependencies import (
    AppSettings,
    Catalog,
    Idempotency,
    OrderId,
    ReadSession,
    Rules,
    Session,
)
from order_service.errors import (
    CatalogUnavailable,
    DigitalOceanUnavailable,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidCoupon,
    InvalidDuration,
    InvalidImage,
    InvalidPlan,
    InvalidRegion,
    InvalidSshKey,
    OrderAccessDenied,
    OrderNotFound,
    OrderStatusConflict,
    SecretsKeyRequired,
    ServiceSuspended,
    TooManyUnpaidOrders,
    Unauthorized,
    ValidationFailed,
)
from order_service.jsonresponse import json_response
from order_service.lifecycle import service as lifecycle
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

CREATE_EXAMPLES = {
    "monthly_with_coupon": {
        "summary": "Basic 1GB, Ubuntu, monthly, with a coupon",
        "value": {
            "planId": "a1000000-0000-4000-8000-000000000001",
            "imageId": "b2000000-0000-4000-8000-000000000001",
            "duration": "MONTHLY",
            "couponCode": "HEMAT20",
        },
    },
    "annual": {
        "summary": "Standard 2GB, Debian, annual (the catalog's YEARLY price), no coupon",
        "value": {
            "planId": "a1000000-0000-4000-8000-000000000002",
            "imageId": "b2000000-0000-4000-8000-000000000002",
            "duration": "ANNUAL",
        },
    },
    "with_ssh_keys": {
        "summary": "A host name, a region and the customer's SSH key (access SSH_KEYS)",
        "value": {
            "planId": "a1000000-0000-4000-8000-000000000001",
            "imageId": "b2000000-0000-4000-8000-000000000001",
            "duration": "MONTHLY",
            "hostname": "web-1.example.com",
            "region": "sgp1",
            "sshKeyIds": ["d4000000-0000-4000-8000-000000000001"],
        },
    },
}

Page = Annotated[int, Query(ge=1, le=2_147_483_647, description="1-based page number")]
Limit = Annotated[int, Query(ge=1, le=100, description="orders per page (1-100)")]


@router.post(
    "",
    status_code=201,
    response_model=DataEnvelope[OrderOut],
    summary="Order a VPS",
    response_description=(
        "The new order, PENDING_PAYMENT. A retry with the same Idempotency-Key and body "
        "gets this same status and body again."
    ),
    description=(
        "Prices the plan and image live from catalog-service and stores the snapshot. "
        "Send an `Idempotency-Key` to make retries safe: a retry with the same key and body "
        "replays the first response. A user holding MAX_UNPAID_ORDERS_PER_USER unpaid orders "
        "gets 429 TOO_MANY_UNPAID_ORDERS (`details.limit`) until one is paid or canceled.\n\n"
        "The server: `hostname` (the droplet's name, stored lower-case; invalid: 400 "
        "VALIDATION_ERROR), `region` (one of GET /api/v1/regions?planId=, else 400 "
        "INVALID_REGION; absent: the service's default region, DigitalOcean is not asked), "
        "`sshKeyIds` (up to 10 of your keys; another user's or an unknown id: 400 "
        "INVALID_SSH_KEY with `details.sshKeyId`). With keys the order's `access` is "
        "SSH_KEYS; without, PASSWORD: a random root password is set at first boot and "
        "readable once at GET /api/v1/orders/{id}/credentials; a service without "
        "SECRETS_KEY refuses such an order (409 SECRETS_KEY_REQUIRED)."
    ),
    responses=error_responses(
        ValidationFailed,
        InvalidPlan,
        InvalidImage,
        InvalidCoupon,
        InvalidDuration,
        Unauthorized,
        IdempotencyKeyInUse,
        IdempotencyKeyReused,
        TooManyUnpaidOrders,
        InvalidRegion,
        InvalidSshKey,
        SecretsKeyRequired,
        CatalogUnavailable,
        DigitalOceanUnavailable,
    ),
)
async def create_order(
    body: Annotated[CreateOrderRequest, Body(openapi_examples=CREATE_EXAMPLES)],
    user: User,
    session: Session,
    catalog: Catalog,
    idempotency: Idempotency,
    settings: AppSettings,
    rules: Rules,
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
    result = await service.create_order(
        session,
        catalog,
        idempotency,
        user,
        body,
        idempotency_key,
        rules=rules,
        max_unpaid=settings.max_unpaid_orders_per_user,
    )
    return json_response(result.body, result.status_code)


@router.get(
    "",
    response_model=ListEnvelope[OrderOut],
    summary="List my orders, newest first",
    response_description="One page of the caller's orders and the paging meta",
    description=(
        "A page past the end is 200 with empty `data` and the true `meta`. "
        "List items carry items and provisioningTask but no statusHistory."
    ),
    responses=error_responses(ValidationFailed, Unauthorized),
)
async def list_my_orders(
    user: User,
    session: ReadSession,
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
    response_description="The order (no statusHistory)",
    description=(
        "Poll this every 3-5 s while the order is PROVISIONING; stop at ACTIVE, FAILED or "
        "CANCELED. `provisioningTask` is null until the order is paid."
    ),
    responses=error_responses(ValidationFailed, Unauthorized, OrderAccessDenied, OrderNotFound),
)
async def get_my_order(order_id: OrderId, user: User, session: ReadSession) -> Response:
    return json_response(await service.get_order(session, order_id, owner=user, history=False))


@router.post(
    "/{order_id}/cancel",
    response_model=DataEnvelope[OrderOut],
    summary="Cancel my order (unpaid: now; running: at the end of its period)",
    response_description="The order after the change",
    description=(
        "PENDING_PAYMENT → CANCELED. ACTIVE: the service ends at expiresAt "
        "(`cancelAtPeriodEnd: true`, event CANCEL_SCHEDULED; no suspension, no grace; "
        "`DELETE` takes it back); already scheduled → 409. SUSPENDED for non-payment "
        "(EXPIRED): TERMINATED now and the droplet destroyed; suspended by an operator "
        "(ADMIN): 409 SERVICE_SUSPENDED. Other states: 409 ORDER_STATUS_CONFLICT."
    ),
    responses=error_responses(
        ValidationFailed,
        Unauthorized,
        OrderAccessDenied,
        OrderNotFound,
        OrderStatusConflict,
        ServiceSuspended,
    ),
)
async def cancel_my_order(
    order_id: OrderId,
    user: User,
    session: Session,
    body: Annotated[ActionRequest | None, Body()] = None,
) -> Response:
    result: dict[str, Any] = await lifecycle.cancel(
        session, order_id, user=user, reason=body.reason if body else None
    )
    return json_response(result)
