"""Request and response shapes of the order API (camelCase JSON, SPEC section 5).

Responses are rendered by `orders.views` straight to JSON; these models are the
documented contract (OpenAPI) and what tests validate responses against.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from order_service.orders.states import Duration, OrderStatus, TaskStatus

T = TypeVar("T")

# PostgreSQL text cannot hold NUL: refuse it as invalid input, not later as a 500.
NO_NUL = r"^[^\x00]*$"


def _canonical_uuid(value: str) -> str:
    # Ids are UUIDs (SPEC section 5): anything else is refused here as a
    # VALIDATION_ERROR naming the field, before catalog-service is asked.
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError("must be a UUID") from None


#: A catalog id in a request body: a UUID, passed on in its canonical lower-case form.
UuidStr = Annotated[
    str,
    Field(min_length=1, max_length=64, json_schema_extra={"format": "uuid"}),
    AfterValidator(_canonical_uuid),
]


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

    plan_id: UuidStr
    image_id: UuidStr
    duration: Duration
    coupon_code: str | None = Field(default=None, min_length=1, max_length=64, pattern=NO_NUL)

    def fingerprint(self) -> dict[str, Any]:
        """What makes two requests "the same" for Idempotency-Key purposes."""
        return self.model_dump(mode="json", by_alias=True)


class PaymentStatusRequest(CamelModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "PAID", "notes": "BCA transfer #8812"}]}
    )

    status: Literal["PAID", "PAYMENT_FAILED"]
    notes: str | None = Field(default=None, max_length=1000, pattern=NO_NUL)


class ActionRequest(CamelModel):
    """Optional body of cancel and retry: why the operator did it."""

    reason: str | None = Field(default=None, max_length=1000, pattern=NO_NUL)


class PricingOut(CamelModel):
    """The price snapshot taken from catalog-service when the order was placed (whole IDR)."""

    base_price: int = Field(description="the plan's active price for the duration")
    promo_discount: int = Field(description="the running promo giving the largest discount")
    coupon_code: str | None
    coupon_discount: int = Field(description="as catalog-service computed it")
    final_price: int = Field(description="max(0, basePrice - promoDiscount - couponDiscount)")
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
    """The droplet behind a paid order, as the provisioner last saw it."""

    id: uuid.UUID
    status: TaskStatus
    droplet_id: str | None = Field(description="DigitalOcean's droplet id, as a string")
    droplet_name: str | None = Field(description="vps-<first 8 characters of the order id>")
    droplet_status: str | None = Field(
        description=(
            "DigitalOcean's status (new, active, off, archive, errored), or `gone` once "
            "DigitalOcean stopped showing the droplet"
        )
    )
    ipv4_public: str | None
    ipv4_private: str | None
    do_region: str
    do_size: str
    do_image: str
    do_account: str | None = Field(
        default=None, description="the DigitalOcean account holding the droplet (null: not placed)"
    )
    droplet_tags: list[str] | None
    droplet_created_at: datetime | None
    error_code: str | None = Field(
        description="PROVISIONING_FAILED, DIGITALOCEAN_UNAVAILABLE or PROVISIONING_TIMEOUT"
    )
    error_message: str | None = Field(description="readable reason, for operators")
    attempts: int = Field(description="checks made against DigitalOcean in the current run")
    started_at: datetime | None = Field(description="when the current run requested the droplet")
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
    activated_at: datetime | None = Field(description="first time the order became ACTIVE")
    expires_at: datetime | None = Field(description="end of the paid period")
    suspended_at: datetime | None
    suspension_reason: Literal["EXPIRED", "ADMIN"] | None
    terminated_at: datetime | None
    termination_reason: Literal["EXPIRED", "CANCELED_BY_USER", "ADMIN"] | None
    cancel_at_period_end: bool = Field(description="the service ends at expiresAt")
    plan_changed_at: datetime | None = Field(
        default=None, description="v1.2: when the order last moved to another plan"
    )


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
