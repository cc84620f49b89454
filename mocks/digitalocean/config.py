"""The fake's behaviour knobs (:class:`FakeConfig`) and the names they refer to."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt, field_validator

# One per modelled /v2 route: counted in stats["by_route"], failable with fail_next.
RouteKind = Literal[
    "create",  # POST /v2/droplets
    "get",  # GET /v2/droplets/{id}
    "list",  # GET /v2/droplets
    "action",  # GET /v2/actions/{id}
    "post_action",  # POST /v2/droplets/{id}/actions
    "list_actions",  # GET /v2/droplets/{id}/actions
    "delete_droplet",  # DELETE /v2/droplets/{id}
    "account",  # GET /v2/account
    "list_keys",  # GET /v2/account/keys
    "get_key",  # GET /v2/account/keys/{id or fingerprint}
    "create_key",  # POST /v2/account/keys
    "regions",  # GET /v2/regions
    "sizes",  # GET /v2/sizes
]
ROUTE_KINDS: tuple[RouteKind, ...] = get_args(RouteKind)

# Droplet actions the fake performs (POST /v2/droplets/{id}/actions "type").
ActionType = Literal["reboot", "shutdown", "power_off", "power_on", "rebuild", "resize"]
ACTION_TYPES: tuple[ActionType, ...] = get_args(ActionType)

# Droplet outcome decided at creation time from the image slug and the config
# of that moment, so later config changes never rewrite a droplet's history.
Fate = Literal["active", "errored", "never_active", "errored_status"]

#: What a new account may hold unless configured otherwise. Real DO gives a new
#: account 25; the fake defaults high so tests and benchmarks are not capped.
DEFAULT_DROPLET_LIMIT = 10_000


class FakeConfig(BaseModel):
    """Behaviour knobs of one fake instance; settable at construction and at run time."""

    model_config = ConfigDict(extra="forbid")

    tokens: list[str] = Field(default_factory=lambda: ["fake-do-token"])
    # -- accounts: token -> account name (an unlisted token is its own account)
    token_accounts: dict[str, str] = Field(default_factory=dict)
    droplet_limit: NonNegativeInt = DEFAULT_DROPLET_LIMIT
    droplet_limits: dict[str, NonNegativeInt] = Field(default_factory=dict)
    boot_seconds: NonNegativeFloat = 2.0
    per_minute: NonNegativeInt = 250
    per_hour: NonNegativeInt = 5000
    consistency_delay_s: NonNegativeFloat = 0.0
    errored_images: list[str] = Field(default_factory=list)
    never_active_images: list[str] = Field(default_factory=list)
    errored_status_images: list[str] = Field(default_factory=list)
    fail_next: dict[RouteKind, NonNegativeInt] = Field(
        default_factory=lambda: dict.fromkeys(ROUTE_KINDS, 0)
    )
    fail_status: int = Field(default=500, ge=500, le=599)
    create_422_transient: NonNegativeInt = 0
    create_422_permanent: bool = False
    latency_ms: NonNegativeFloat = 0.0
    # -- regions and sizes offered (GET /v2/regions, /v2/sizes, create and resize checks)
    unavailable_regions: list[str] = Field(default_factory=lambda: ["nyc2"])
    sizes_missing: dict[str, list[str]] = Field(default_factory=lambda: {"s-4vcpu-8gb": ["blr1"]})
    # -- droplet actions and deletes
    action_seconds: NonNegativeFloat = 1.0
    action_422_pending: NonNegativeInt = 0
    action_errored_next: dict[ActionType, NonNegativeInt] = Field(
        default_factory=lambda: dict.fromkeys(ACTION_TYPES, 0)
    )
    delete_listing_lag_seconds: NonNegativeFloat = 0.0

    @field_validator("fail_next")
    @classmethod
    def _all_route_kinds(cls, value: dict[RouteKind, int]) -> dict[RouteKind, int]:
        # Always carry every kind so GET /_fake/config shows what is pending.
        return {kind: value.get(kind, 0) for kind in ROUTE_KINDS}

    @field_validator("action_errored_next")
    @classmethod
    def _all_action_types(cls, value: dict[ActionType, int]) -> dict[ActionType, int]:
        return {kind: value.get(kind, 0) for kind in ACTION_TYPES}

    @field_validator("token_accounts")
    @classmethod
    def _account_names(cls, value: dict[str, str]) -> dict[str, str]:
        if any(not name for name in value.values()):
            raise ValueError("an account name must not be empty")
        return value

    def account_of(self, token: str) -> str:
        """The account a token belongs to: its mapping, else the token itself."""
        return self.token_accounts.get(token, token)

    def limit_of(self, account: str) -> int:
        return self.droplet_limits.get(account, self.droplet_limit)


#: Config fields that hold per-kind counters: a POST /_fake/config merges them
#: per key instead of replacing the whole mapping.
MERGED_FIELDS = ("fail_next", "action_errored_next")
