"""Request and response shapes of the events feed and webhook endpoints (camelCase, SPEC §11)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from order_service.events.outbox import EVENT_TYPES
from order_service.orders.schemas import NO_NUL, CamelModel

DeliveryStatus = Literal["PENDING", "DELIVERED", "FAILED"]

URL_MAX = 2048


def check_url(value: str) -> str:
    """Only absolute http(s) URLs with a host (SPEC section 11)."""
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, ValueError):
        raise ValueError("must be an http(s) URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("must be an http(s) URL")
    return value


def check_events(value: list[str]) -> list[str]:
    if value == ["*"]:
        return value
    unknown = [name for name in value if name not in EVENT_TYPES]
    if unknown or "*" in value:
        raise ValueError(
            f"unknown event type(s) {sorted(set(unknown) | ({'*'} & set(value)))}: "
            'use known types or ["*"] alone'
        )
    # Keep the caller's order, without repeats.
    return list(dict.fromkeys(value))


class CreateWebhookRequest(CamelModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": "https://billing.example.com/hooks/orders",
                    "events": ["order.active", "renewal.paid"],
                    "description": "billing: invoice renewals",
                }
            ]
        }
    )

    url: str = Field(
        min_length=1, max_length=URL_MAX, description="http(s) URL events are POSTed to"
    )
    events: list[str] = Field(
        min_length=1, max_length=64, description='event types to receive, or ["*"] for all'
    )
    description: str | None = Field(default=None, max_length=1000, pattern=NO_NUL)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url(value)

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str]) -> list[str]:
        return check_events(value)


class UpdateWebhookRequest(CamelModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"isActive": True}, {"rotateSecret": True}]}
    )

    url: str | None = Field(default=None, min_length=1, max_length=URL_MAX)
    events: list[str] | None = Field(default=None, min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=1000, pattern=NO_NUL)
    is_active: bool | None = None
    rotate_secret: bool = Field(
        default=False, description="true: a new secret, returned once; the old one stops at once"
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_events(value)


class WebhookOut(CamelModel):
    id: uuid.UUID
    url: str
    events: list[str]
    description: str | None
    is_active: bool
    created_at: datetime
    updated_at: datetime
    secret: str | None = Field(
        default=None, description="whsec_…: only in the answers to create and rotateSecret"
    )


class DeliveryOut(CamelModel):
    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    last_duration_ms: int | None
    delivered_at: datetime | None
    created_at: datetime


class EventOut(BaseModel):
    id: uuid.UUID
    sequence: int
    type: str
    createdAt: datetime
    orderId: uuid.UUID | None
    data: dict[str, Any] = Field(
        description="order (+ history, renewal, action, planChange when about one)"
    )


class FeedMeta(BaseModel):
    next: int = Field(description="the `after` to send next time")


class FeedEnvelope(BaseModel):
    data: list[EventOut]
    meta: FeedMeta
