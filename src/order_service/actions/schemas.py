"""Request and response shapes of the server-actions API (camelCase JSON, SPEC section 10)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from order_service.orders.schemas import NO_NUL, CamelModel, UuidStr
from order_service.orders.states import ActionStatus, ActionType

#: What a request may ask for: DESTROY (and anything else) is 400 VALIDATION_ERROR.
RequestableType = Literal["REBOOT", "SHUTDOWN", "POWER_OFF", "POWER_ON", "REBUILD"]


class CreateActionRequest(CamelModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"type": "REBOOT", "reason": "hung after a kernel update"},
                {"type": "REBUILD", "imageId": "b2000000-0000-4000-8000-000000000002"},
            ]
        }
    )

    type: RequestableType = Field(
        description=(
            "REBOOT, SHUTDOWN (graceful), POWER_OFF (hard), POWER_ON, or REBUILD "
            "(reinstalls from `imageId`: the disk is erased)"
        )
    )
    image_id: UuidStr | None = Field(
        default=None,
        description="REBUILD only, and required there: a catalog image allowed for the plan",
    )
    reason: str | None = Field(default=None, max_length=1000, pattern=NO_NUL)

    def fingerprint(self, route: str) -> dict[str, Any]:
        """What makes two requests "the same" for Idempotency-Key purposes."""
        return {"route": route, **self.model_dump(mode="json", by_alias=True)}


class ActionOut(CamelModel):
    id: uuid.UUID
    order_id: uuid.UUID
    type: ActionType
    status: ActionStatus
    requested_by: str = Field(description='"user:<sub>", "admin[:<name>]" or "system"')
    reason: str | None
    image_id: str | None = Field(description="REBUILD: the new image")
    error_code: str | None = Field(
        description=(
            "FAILED: ACTION_FAILED (DigitalOcean refused or the action errored), "
            "ACTION_TIMEOUT or DIGITALOCEAN_UNAVAILABLE. CANCELED (ended before anything was "
            "sent to DigitalOcean): SUPERSEDED (a lifecycle action came first)"
        )
    )
    error_message: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
