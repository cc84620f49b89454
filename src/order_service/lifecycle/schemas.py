"""Request bodies of the lifecycle endpoints (camelCase JSON)."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from order_service.orders.schemas import NO_NUL, CamelModel, IsoTimestamp


class ExpiryRequest(CamelModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"expiresAt": "2026-01-31T00:00:00Z", "reason": "goodwill: +1 week"}]
        }
    )

    expires_at: IsoTimestamp = Field(
        description="the new period end, with a time zone; a past date lets the next scan act"
    )
    reason: str | None = Field(default=None, max_length=1000, pattern=NO_NUL)
