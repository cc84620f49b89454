"""Request and response shapes of the order API (camelCase JSON, SPEC section 5).

Responses are rendered by `orders.views` straight to JSON; these models are the
documented contract (OpenAPI) and what tests validate responses against.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from order_service.orders.states import Duration, OrderStatus, TaskStatus

T = TypeVar("T")


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class CreateOrderRequest(CamelModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "planId": "6a1f0d0e-7c1b-4c59-9a53-1d1f1b6b7a01",
                    "imageId": "0f9a3b1c-3d4e-4f5a-8b6c-7d8e9f0a1b01",
                    "duration": "MONTHLY",
                    "couponCode": "HEMAT20",
                }
            ]
        },
    )

    plan_id: str = Field(min_length=1, max_length=64)
    image_id: str = Field(min_length=1, max_length=64)
    duration: Duration
    coupon_code: str | None = Field(default=None, min_length=1, max_length=64)

    def fingerprint(self) -> dict[str, Any]:
        """What makes two requests "the same" for Idempotency-Key purposes."""
        return self.model_dump(mode="json", by_alias=True)


class PaymentStatusRequest(CamelModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "PAID", "notes": "BCA transfer #8812"}]}
    )

    status: Literal["PAID", "PAYMENT_FAILED"]
    notes: str | None = Field(default=None, max_length=1000)


class ActionRequest(CamelModel):
    """Optional body of cancel and retry: why the operator did it."""

    reason: str | None = Field(default=None, max_length=1000)


class PricingOut(CamelModel):
    base_price: int
    promo_discount: int
    coupon_code: str | None
    coupon_discount: int
    final_price: int
    currency: Literal["IDR"] = "IDR"


class OrderItemOut(CamelModel):
    id: uuid.UUID
    item_type: Literal["PLAN", "IMAGE", "ADDON"]
    reference_id: str
    description: str
    unit_price: int
    quantity: int
    total_price: int


class ProvisioningTaskOut(CamelModel):
    id: uuid.UUID
    status: TaskStatus
    droplet_id: str | None
    droplet_name: str | None
    droplet_status: str | None
    ipv4_public: str | None
    ipv4_private: str | None
    do_region: str
    do_size: str
    do_image: str
    droplet_tags: list[str] | None
    droplet_created_at: datetime | None
    error_code: str | None
    error_message: str | None
    attempts: int
    started_at: datetime | None
    completed_at: datetime | None


class StatusHistoryOut(CamelModel):
    id: uuid.UUID
    previous_status: str = Field(description='"" for the first row')
    new_status: str
    actor: str
    reason: str | None
    metadata: dict[str, Any] | None
    created_at: datetime


class OrderOut(CamelModel):
    id: uuid.UUID
    user_id: str
    status: OrderStatus
    plan_id: str
    plan_name: str
    image_id: str
    image_name: str
    duration: Duration
    pricing: PricingOut
    items: list[OrderItemOut]
    provisioning_task: ProvisioningTaskOut | None = Field(
        description="null until the order is paid"
    )
    status_history: list[StatusHistoryOut] | None = Field(
        default=None, description="internal detail only, oldest first"
    )
    created_at: datetime
    updated_at: datetime
    paid_at: datetime | None


class PageMeta(BaseModel):
    page: int
    limit: int
    total: int
    totalPages: int


class DataEnvelope(BaseModel, Generic[T]):
    data: T


class ListEnvelope(BaseModel, Generic[T]):
    data: list[T]
    meta: PageMeta


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any] | None = None


class ErrorEnvelope(BaseModel):
    error: ErrorDetail
