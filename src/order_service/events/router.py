"""Ops routes of SPEC section 11: the event feed and webhook endpoints (X-API-Key)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response

from order_service.auth import internal_caller
from order_service.dependencies import Session
from order_service.errors import DeliveryNotFound, Unauthorized, ValidationFailed, WebhookNotFound
from order_service.events import endpoints
from order_service.events.feed import read_feed
from order_service.events.schemas import (
    CreateWebhookRequest,
    DeliveryOut,
    DeliveryStatus,
    FeedEnvelope,
    UpdateWebhookRequest,
    WebhookOut,
)
from order_service.jsonresponse import json_response
from order_service.openapi import error_responses
from order_service.orders.router import Page
from order_service.orders.schemas import DataEnvelope, ListEnvelope

router = APIRouter(
    prefix="/api/v1/internal", tags=["internal"], dependencies=[Depends(internal_caller)]
)

Limit = Annotated[int, Query(ge=1, le=100, description="items per page (1-100)")]


def _uuid(value: str, error: type[Exception]) -> uuid.UUID:
    # A malformed id names nothing: the same 404 as an unknown one.
    try:
        return uuid.UUID(value)
    except ValueError:
        raise error() from None


async def _webhook_id(
    webhook_id: Annotated[str, Path(description="Webhook endpoint id (UUID)")],
) -> uuid.UUID:
    return _uuid(webhook_id, WebhookNotFound)


async def _delivery_id(
    delivery_id: Annotated[str, Path(description="Delivery id (UUID)")],
) -> uuid.UUID:
    return _uuid(delivery_id, DeliveryNotFound)


WebhookId = Annotated[uuid.UUID, Depends(_webhook_id)]
DeliveryId = Annotated[uuid.UUID, Depends(_delivery_id)]


@router.get(
    "/events",
    response_model=FeedEnvelope,
    summary="The event feed, by sequence: page with after = meta.next",
    description=(
        "Events with a sequence greater than `after`, oldest first. Keep `meta.next` and send it "
        "as `after` next time: nothing is missed and nothing comes twice, even when the changes "
        "committed out of order (an event appears only once every smaller sequence has)."
    ),
    responses=error_responses(ValidationFailed, Unauthorized),
)
async def feed(
    session: Session,
    after: Annotated[int, Query(ge=0, le=2**62, description="last sequence already seen")] = 0,
    limit: Annotated[int, Query(ge=1, le=500, description="events per page (1-500)")] = 100,
    order_id: Annotated[
        uuid.UUID | None, Query(alias="orderId", description="only this order")
    ] = None,
    event_type: Annotated[
        str | None,
        Query(
            alias="type",
            max_length=64,
            # Event types look like `order.active`: anything else (a NUL byte,
            # which PostgreSQL refuses in text) is 400, an unknown type matches nothing.
            pattern=r"^[a-z]+\.[a-z_]+$",
            description="only this event type",
        ),
    ] = None,
) -> Response:
    return json_response(
        await read_feed(session, after=after, limit=limit, order_id=order_id, event_type=event_type)
    )


@router.post(
    "/webhooks",
    status_code=201,
    response_model=DataEnvelope[WebhookOut],
    summary="Register a webhook endpoint (the secret is shown only here)",
    description=(
        'Events written from now on whose type is in `events` (or all, with `["*"]`) are '
        "POSTed to `url`, signed per Standard Webhooks with the returned `secret` (`whsec_…`). "
        "Store the secret: no other answer shows it, except a rotation's."
    ),
    responses=error_responses(ValidationFailed, Unauthorized),
)
async def create_webhook(body: CreateWebhookRequest, session: Session) -> Response:
    return json_response(await endpoints.create(session, body), 201)


@router.get(
    "/webhooks",
    response_model=ListEnvelope[WebhookOut],
    summary="Webhook endpoints, newest first",
    responses=error_responses(ValidationFailed, Unauthorized),
)
async def list_webhooks(session: Session, page: Page = 1, limit: Limit = 10) -> Response:
    return json_response(await endpoints.list_endpoints(session, page=page, limit=limit))


@router.get(
    "/webhooks/{webhook_id}",
    response_model=DataEnvelope[WebhookOut],
    summary="One webhook endpoint",
    responses=error_responses(ValidationFailed, Unauthorized, WebhookNotFound),
)
async def get_webhook(webhook_id: WebhookId, session: Session) -> Response:
    return json_response(await endpoints.get(session, webhook_id))


@router.patch(
    "/webhooks/{webhook_id}",
    response_model=DataEnvelope[WebhookOut],
    summary="Change url, events, description, isActive; rotateSecret returns a new secret once",
    description=(
        "`rotateSecret: true` replaces the secret; from then on deliveries are signed with the "
        "new one only, and the answer is the only place it is shown. `isActive: true` enables an "
        "endpoint again (e.g. after a 410 disabled it); deliveries kept while it was off resume."
    ),
    responses=error_responses(ValidationFailed, Unauthorized, WebhookNotFound),
)
async def update_webhook(
    webhook_id: WebhookId, body: UpdateWebhookRequest, session: Session
) -> Response:
    return json_response(await endpoints.patch(session, webhook_id, body))


@router.delete(
    "/webhooks/{webhook_id}",
    status_code=204,
    summary="Delete a webhook endpoint and its delivery log",
    responses=error_responses(Unauthorized, WebhookNotFound),
)
async def delete_webhook(webhook_id: WebhookId, session: Session) -> Response:
    await endpoints.remove(session, webhook_id)
    return Response(status_code=204)


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    response_model=ListEnvelope[DeliveryOut],
    summary="The endpoint's delivery log, newest first",
    responses=error_responses(ValidationFailed, Unauthorized, WebhookNotFound),
)
async def list_deliveries(
    webhook_id: WebhookId,
    session: Session,
    page: Page = 1,
    limit: Limit = 10,
    status: Annotated[DeliveryStatus | None, Query(description="only this status")] = None,
) -> Response:
    return json_response(
        await endpoints.list_deliveries(session, webhook_id, page=page, limit=limit, status=status)
    )


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=DataEnvelope[DeliveryOut],
    summary="Try a delivery again now (any status)",
    responses=error_responses(Unauthorized, WebhookNotFound, DeliveryNotFound),
)
async def redeliver(webhook_id: WebhookId, delivery_id: DeliveryId, session: Session) -> Response:
    return json_response(await endpoints.redeliver(session, webhook_id, delivery_id), 202)


@router.post(
    "/webhooks/{webhook_id}/ping",
    status_code=202,
    response_model=DataEnvelope[DeliveryOut],
    summary="Send a webhook.ping to this endpoint alone",
    description="Not in the feed and without a sequence; its delivery shows in the log.",
    responses=error_responses(Unauthorized, WebhookNotFound),
)
async def ping(webhook_id: WebhookId, session: Session) -> Response:
    return json_response(await endpoints.ping(session, webhook_id), 202)
