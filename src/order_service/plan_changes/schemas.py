"""Request and response shapes of the plan-change API (camelCase JSON, SPEC section 15)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from order_service.orders.schemas import NO_NUL, CamelModel, UuidStr
from order_service.orders.states import Duration, PlanChangeStatus

EXAMPLE_PLAN_ID = "a1000000-0000-4000-8000-000000000002"


class CreatePlanChangeRequest(CamelModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"planId": EXAMPLE_PLAN_ID}]})

    plan_id: UuidStr = Field(description="the plan to move to: same duration, another plan")

    def fingerprint(self, order_id: uuid.UUID) -> dict[str, Any]:
        """What makes two requests "the same" for Idempotency-Key purposes (the order too)."""
        return {"planChangeOf": str(order_id), **self.model_dump(mode="json", by_alias=True)}


class PlanChangePaymentRequest(CamelModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "PAID", "notes": "BCA transfer #9131"}]}
    )

    status: Literal["PAID", "PAYMENT_FAILED"]
    notes: str | None = Field(default=None, max_length=1000, pattern=NO_NUL)


_PRICE = "the plan's live price for the order's duration after its best active promo (no coupon)"


class PlanChangeQuoteOut(CamelModel):
    """What moving to the plan costs now; nothing is stored."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "fromPlanId": "a1000000-0000-4000-8000-000000000001",
                    "toPlanId": EXAMPLE_PLAN_ID,
                    "toPlanName": "Standard 2GB",
                    "duration": "MONTHLY",
                    "oldPrice": 90000,
                    "newPrice": 185000,
                    "remainingSeconds": 1296000,
                    "periodSeconds": 2592000,
                    "amountDue": 47500,
                    "currency": "IDR",
                    "resizeDisk": True,
                }
            ]
        }
    )

    from_plan_id: str
    to_plan_id: str
    to_plan_name: str
    duration: Duration
    old_price: int = Field(description="the order's plan now: " + _PRICE)
    new_price: int = Field(description="the new plan: " + _PRICE)
    remaining_seconds: int = Field(description="expiresAt - now, in whole seconds")
    period_seconds: int = Field(description="the length of one duration ending at expiresAt")
    amount_due: int = Field(
        description="max(0, floor((newPrice - oldPrice) x remainingSeconds / periodSeconds))"
    )
    currency: Literal["IDR"] = "IDR"
    resize_disk: bool = Field(description="the new plan has more disk: DO grows it for good")


class PlanChangeOut(CamelModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "a7000000-0000-4000-8000-000000000001",
                    "orderId": "c3000000-0000-4000-8000-000000000009",
                    "fromPlanId": "a1000000-0000-4000-8000-000000000001",
                    "toPlanId": EXAMPLE_PLAN_ID,
                    "toPlanName": "Standard 2GB",
                    "duration": "MONTHLY",
                    "oldPrice": 90000,
                    "newPrice": 185000,
                    "amountDue": 47500,
                    "currency": "IDR",
                    "resizeDisk": True,
                    "status": "PENDING_PAYMENT",
                    "actionId": None,
                    "errorCode": None,
                    "errorMessage": None,
                    "createdAt": "2026-12-12T08:00:00Z",
                    "updatedAt": "2026-12-12T08:00:00Z",
                    "paidAt": None,
                    "completedAt": None,
                }
            ]
        }
    )

    id: uuid.UUID
    order_id: uuid.UUID
    from_plan_id: str
    to_plan_id: str
    to_plan_name: str
    duration: Duration
    old_price: int
    new_price: int
    amount_due: int
    currency: Literal["IDR"] = "IDR"
    resize_disk: bool
    status: PlanChangeStatus
    action_id: uuid.UUID | None = Field(description="the system RESIZE action, once PAID")
    error_code: str | None = Field(description="FAILED: ACTION_FAILED, ACTION_TIMEOUT, ...")
    error_message: str | None
    created_at: datetime
    updated_at: datetime
    paid_at: datetime | None
    completed_at: datetime | None
