"""Server-action endpoints: /api/v1/orders/{id}/actions (owners) and
/api/v1/internal/orders/{id}/actions (operators). Thin: the rules live in
`actions.service`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Path
from starlette.responses import Response

from order_service.actions import service
from order_service.actions.schemas import ActionOut, CreateActionRequest
from order_service.auth import Internal, User, internal_caller
from order_service.dependencies import Catalog, Idempotency, OrderId, Session
from order_service.errors import (
    ActionInProgress,
    ActionNotFound,
    CatalogUnavailable,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidImage,
    OrderAccessDenied,
    OrderNotFound,
    OrderStatusConflict,
    ServiceSuspended,
    Unauthorized,
    ValidationFailed,
)
from order_service.jsonresponse import json_response
from order_service.openapi import error_responses
from order_service.orders.router import Limit, Page
from order_service.orders.schemas import DataEnvelope, ListEnvelope

router = APIRouter(prefix="/api/v1/orders", tags=["orders"])
internal_router = APIRouter(
    prefix="/api/v1/internal/orders",
    tags=["internal"],
    dependencies=[Depends(internal_caller)],
)

EXAMPLES = {
    "reboot": {"summary": "Reboot the server", "value": {"type": "REBOOT"}},
    "power_off": {
        "summary": "Hard power-off (SHUTDOWN is the graceful one)",
        "value": {"type": "POWER_OFF", "reason": "runaway process"},
    },
    "rebuild": {
        "summary": "Reinstall from another image: ERASES THE DISK",
        "value": {"type": "REBUILD", "imageId": "b2000000-0000-4000-8000-000000000002"},
    },
}
ActionId = Annotated[str, Path(description="Action id (UUID)")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Client-chosen key, unique per intended action; kept 24 h",
    ),
]
POST_ERRORS = (
    ValidationFailed,
    InvalidImage,
    Unauthorized,
    OrderNotFound,
    ActionInProgress,
    OrderStatusConflict,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    CatalogUnavailable,
)
DESCRIPTION = (
    "Queues the action and answers `202` with it, PENDING; follow it with GET until "
    "COMPLETED, FAILED (`errorCode` ACTION_FAILED, ACTION_TIMEOUT or DIGITALOCEAN_UNAVAILABLE) "
    "or CANCELED (`errorCode` SUPERSEDED: a lifecycle action of the service came first and "
    "nothing was sent to the server). One action per server at a time: another while one is "
    "PENDING or IN_PROGRESS is 409 ACTION_IN_PROGRESS (`details.actionId`). REBUILD needs "
    "`imageId` (active, allowed for the plan, else 400 INVALID_IMAGE) and erases the disk. An "
    "action whose end state already holds (POWER_ON on a running server) completes without "
    "touching the server. `Idempotency-Key` makes a retry replay the first response."
)


@router.post(
    "/{order_id}/actions",
    status_code=202,
    response_model=DataEnvelope[ActionOut],
    summary="Reboot, power or rebuild my server",
    response_description="The queued action",
    description=DESCRIPTION + " Only ACTIVE orders (SUSPENDED: 409 SERVICE_SUSPENDED).",
    responses=error_responses(*POST_ERRORS, OrderAccessDenied, ServiceSuspended),
)
async def request_my_action(
    order_id: OrderId,
    body: Annotated[CreateActionRequest, Body(openapi_examples=EXAMPLES)],
    user: User,
    session: Session,
    catalog: Catalog,
    idempotency: Idempotency,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    result = await service.request_action(
        session,
        catalog,
        idempotency,
        order_id,
        body,
        service.Caller.user(user),
        idempotency_key,
        route=f"POST /api/v1/orders/{order_id}/actions",
    )
    return json_response(result.body, result.status_code)


@router.get(
    "/{order_id}/actions",
    response_model=ListEnvelope[ActionOut],
    summary="My server's actions, newest first",
    response_description="One page of the order's actions (the service's own included)",
    responses=error_responses(ValidationFailed, Unauthorized, OrderAccessDenied, OrderNotFound),
)
async def list_my_actions(
    order_id: OrderId, user: User, session: Session, page: Page = 1, limit: Limit = 10
) -> Response:
    caller = service.Caller.user(user)
    return json_response(
        await service.list_actions(session, order_id, caller, page=page, limit=limit)
    )


@router.get(
    "/{order_id}/actions/{action_id}",
    response_model=DataEnvelope[ActionOut],
    summary="One action of my server",
    response_description="The action",
    responses=error_responses(Unauthorized, OrderAccessDenied, OrderNotFound, ActionNotFound),
)
async def get_my_action(
    order_id: OrderId, action_id: ActionId, user: User, session: Session
) -> Response:
    caller = service.Caller.user(user)
    return json_response(await service.get_action(session, order_id, action_id, caller))


@internal_router.post(
    "/{order_id}/actions",
    status_code=202,
    response_model=DataEnvelope[ActionOut],
    summary="Reboot, power or rebuild a server (operators)",
    response_description="The queued action",
    description=DESCRIPTION + " ACTIVE or SUSPENDED orders; the Idempotency-Key is the "
    "operator key's own.",
    responses=error_responses(*POST_ERRORS),
)
async def request_action(
    order_id: OrderId,
    body: Annotated[CreateActionRequest, Body(openapi_examples=EXAMPLES)],
    caller: Internal,
    session: Session,
    catalog: Catalog,
    idempotency: Idempotency,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    result = await service.request_action(
        session,
        catalog,
        idempotency,
        order_id,
        body,
        service.Caller.operator(caller.actor),
        idempotency_key,
        route=f"POST /api/v1/internal/orders/{order_id}/actions",
    )
    return json_response(result.body, result.status_code)


@internal_router.get(
    "/{order_id}/actions",
    response_model=ListEnvelope[ActionOut],
    summary="A server's actions, newest first",
    response_description="One page of the order's actions",
    responses=error_responses(ValidationFailed, Unauthorized, OrderNotFound),
)
async def list_actions(
    order_id: OrderId, caller: Internal, session: Session, page: Page = 1, limit: Limit = 10
) -> Response:
    operator = service.Caller.operator(caller.actor)
    return json_response(
        await service.list_actions(session, order_id, operator, page=page, limit=limit)
    )


@internal_router.get(
    "/{order_id}/actions/{action_id}",
    response_model=DataEnvelope[ActionOut],
    summary="One action of a server",
    response_description="The action",
    responses=error_responses(Unauthorized, OrderNotFound, ActionNotFound),
)
async def get_action(
    order_id: OrderId, action_id: ActionId, caller: Internal, session: Session
) -> Response:
    operator = service.Caller.operator(caller.actor)
    return json_response(await service.get_action(session, order_id, action_id, operator))
