"""Request and response shapes of /api/v1/internal/do-accounts (SPEC section 13)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel

from order_service.orders.schemas import CamelModel
from order_service.orders.states import AccountHealth

#: An account's name: 1-40 of a-z 0-9 and "-".
ACCOUNT_NAME = r"^[a-z0-9-]{1,40}$"
#: A DO token as pasted (DO's are ~70 characters); never echoed back. Printable ASCII
#: without spaces: it travels in an HTTP header (anything else could not be sent).
TOKEN_PATTERN = r"^[\x21-\x7e]+$"  # noqa: S105 - a pattern, not a token
Token = Field(min_length=8, max_length=256, pattern=TOKEN_PATTERN, description="never shown again")


class CreateDoAccountRequest(CamelModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        json_schema_extra={
            "examples": [{"name": "sgp-2", "token": "dop_v1_...", "isActive": True, "reserve": 2}]
        },
    )

    name: str = Field(pattern=ACCOUNT_NAME, description="1-40 of a-z 0-9 -, unique")
    token: str = Token
    is_active: bool = True
    reserve: int = Field(
        default=0, ge=0, le=100_000, description="room kept for hand-made droplets"
    )


class UpdateDoAccountRequest(CamelModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        json_schema_extra={"examples": [{"isActive": False}, {"token": "dop_v1_..."}]},
    )

    is_active: bool | None = None
    reserve: int | None = Field(default=None, ge=0, le=100_000)
    token: str | None = Field(
        default=None, min_length=8, max_length=256, pattern=TOKEN_PATTERN, description="never shown"
    )


class DoAccountOut(CamelModel):
    """A DO account as ops see it: never the token, only its last 4 characters."""

    id: uuid.UUID
    name: str
    is_active: bool
    reserve: int
    droplet_limit: int | None = Field(description="DO's limit as last checked (null: never)")
    droplets: int = Field(description="live droplets of our orders in it")
    creating: int = Field(description="droplet creates in flight")
    free: int = Field(description="dropletLimit - reserve - droplets - creating, at least 0")
    health: AccountHealth
    last_error: str | None
    last_checked_at: datetime | None
    token_hint: str | None = Field(description="the token's last 4 characters")
    created_at: datetime
    updated_at: datetime
