"""Request and response shapes of the renewal API (camelCase JSON, SPEC sections 5 and 9)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from order_service.orders.schemas import NO_NUL, CamelModel, PricingOut
from order_service.orders.states import Duration, RenewalStatus

Periods = Field(default=1, ge=1, le=12, description="how many periods of the order's duration")


class CreateRenewalRequest(CamelModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"periods": 3, "couponCode": "HEMAT20"}]}
    )

    periods: int = Periods
    coupon_code: str | None = Field(default=None, min_length=1, max_length=64, pattern=NO_NUL)

    def fingerprint(self, order_id: uuid.UUID) -> dict[str, Any]:
        """What makes two requests "the same" for Idempotency-Key purposes (the order too)."""
        return {"renewalOf": str(order_id), **self.model_dump(mode="json", by_alias=True)}


class RenewalPaymentRequest(CamelModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "PAID", "notes": "BCA transfer #9120"}]}
    )

    status: Literal["PAID", "PAYMENT_FAILED"]
    notes: str | None = Field(default=None, max_length=1000, pattern=NO_NUL)


class RenewalOut(CamelModel):
    id: uuid.UUID
    order_id: uuid.UUID
    status: RenewalStatus
    periods: int
    duration: Duration
    pricing: PricingOut
    previous_expires_at: datetime | None = Field(description="the order's expiresAt when paid")
    new_expires_at: datetime | None = Field(
        description="max(expiresAt, paidAt) + periods x duration; set when paid"
    )
    created_at: datetime
    updated_at: datetime
    paid_at: datetime | None


class RenewalQuoteOut(CamelModel):
    """What renewing costs now; nothing is stored."""

    periods: int
    duration: Duration
    base_price: int = Field(description="the duration's active price x periods")
    promo_discount: int
    coupon_code: str | None
    coupon_discount: int
    final_price: int
    currency: Literal["IDR"] = "IDR"
    new_expires_at: datetime = Field(
        description="the period end if this renewal were paid now: max(expiresAt, now) + periods"
    )
