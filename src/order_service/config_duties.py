"""The settings of the background duties, by area: DigitalOcean, provisioning,
lifecycle, webhooks, and the v1.2 features.

One model per section of docs/configuration.md, like config_service.py;
`config.Settings` is all the groups together.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, Field

from order_service.config_values import Duration, DurationList, OptionalSecret, RegionList


class DigitalOcean(BaseModel):
    """DigitalOcean.

    All DO calls of all processes on one PostgreSQL database (replicas and
    `--workers` alike) draw from one budget kept in the database: set the two
    rates to the same values everywhere, never divide them by the number of
    processes (on SQLite, one process, the budget is kept in memory). Another
    program using the same DO token is not counted: give it its own token, or
    lower the budget by what it uses.
    """

    digitalocean_api_url: str = Field(
        default="https://api.digitalocean.com",
        description="DO API base (a fake one in development and tests)",
    )
    digitalocean_api_token: OptionalSecret = Field(
        default=None,
        description=(
            "DO bearer token; v1.2: the account named `default` (SPEC section 13), kept in the "
            "environment, never stored. Not required to start: without it, and with no account "
            "added through the API, paid orders wait for one (`WAITING_FOR_CAPACITY`) and the "
            "readiness check stays 200"
        ),
    )
    digitalocean_default_region: str = Field(
        default="sgp1",
        description="The region of an order that names none (v1: of every order)",
    )
    digitalocean_rate_per_minute: int = Field(
        default=225,
        ge=1,
        le=250,
        description=(
            "DO request budget per minute of each account, shared by all processes on one "
            "database (set the same value everywhere; never divide it by the number of "
            "processes). Below DO's 250/min for headroom: a request reaches DO a little after "
            "it is counted"
        ),
    )
    digitalocean_rate_per_hour: int = Field(
        default=4750,
        ge=1,
        le=5000,
        description="DO request budget per hour of each account, shared like the one per minute",
    )


class Provisioning(BaseModel):
    """Provisioning and server actions.

    A paid order's droplet is created and followed by a durable task; server
    actions (reboot, power, rebuild, destroy) are rows worked by the same
    engine (docs/architecture.md). With `PROVISIONING_ENABLED=false` and
    `LIFECYCLE_ENABLED=false` a process serves the API alone.
    """

    provisioning_poll_interval_ms: int = Field(
        default=5000, ge=10, description="How often a droplet in flight is checked, in milliseconds"
    )
    provisioning_max_attempts: int = Field(
        default=60,
        ge=1,
        description="Deadline = interval x attempts after the droplet was requested",
    )
    provisioning_enabled: bool = Field(
        default=True,
        description="`false`: this process works no provisioning task (e.g. an API-only replica)",
    )
    provisioning_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description=(
            "How long a process's claim on a task lasts without renewal: after a crash, another "
            "process (or the restarted one) takes the task over this late"
        ),
    )
    action_timeout: Duration = Field(
        default=timedelta(minutes=10),
        description=(
            "A server action not done this long after it started fails with `ACTION_TIMEOUT` "
            "(SPEC section 10)"
        ),
    )


class Lifecycle(BaseModel):
    """Billing period and lifecycle.

    SPEC section 9: what the service does by itself after an order is ACTIVE: reminders,
    suspension, termination, and the cancellation of unpaid orders.
    """

    lifecycle_enabled: bool = Field(
        default=True,
        description="`false`: this process runs no lifecycle scan (e.g. an API-only replica)",
    )
    lifecycle_scan_interval: Duration = Field(
        default=timedelta(seconds=30),
        description="How often due lifecycle work is looked for, in every process",
    )
    unpaid_order_ttl: Duration = Field(
        default=timedelta(days=7),
        description="An unpaid order is canceled this long after creation; `0`: never",
    )
    expiry_reminders: DurationList = Field(
        default=(timedelta(days=7), timedelta(days=3), timedelta(days=1)),
        description=(
            "Before `expiresAt`, one `EXPIRING` event per threshold and period, comma-separated; "
            "empty: none"
        ),
    )
    suspend_grace: Duration = Field(
        default=timedelta(days=1),
        description="An expired service is suspended this long after `expiresAt`",
    )
    terminate_after: Duration = Field(
        default=timedelta(days=7),
        description=(
            "A service suspended for non-payment is terminated this long after its suspension"
        ),
    )
    shutdown_grace: Duration = Field(
        default=timedelta(minutes=2),
        description=(
            "A suspension's graceful `SHUTDOWN` gets this long before a hard `POWER_OFF`, sent "
            "only if the droplet is not off by then"
        ),
    )


class Webhooks(BaseModel):
    """Events and webhooks.

    SPEC section 11: every change writes an event; webhook endpoints receive the types they
    subscribed to, retried on this schedule until a 2xx.
    """

    webhook_retry_schedule: DurationList = Field(
        default=(
            timedelta(seconds=5),
            timedelta(minutes=5),
            timedelta(minutes=30),
            timedelta(hours=2),
            timedelta(hours=5),
            timedelta(hours=10),
            timedelta(hours=10),
        ),
        description=(
            "Waits (jittered by up to 20%) before the 2nd, 3rd, ... delivery attempt; after the "
            "last, the delivery is `FAILED`. At least one"
        ),
    )
    webhook_timeout: Duration = Field(
        default=timedelta(seconds=10),
        description="One delivery attempt; no 2xx within it counts as a failure",
    )
    event_retention: Duration = Field(
        default=timedelta(days=30),
        description=(
            "Events and finished deliveries older than this are purged (an event with a "
            "delivery still pending is kept)"
        ),
    )


class V12(BaseModel):
    """v1.2 features.

    Settings of SPEC version 1.2 (sections 2, 8, 9, 13-15): read and checked at
    start-up; each takes effect with the feature it belongs to.
    """

    secrets_key: OptionalSecret = Field(
        default=None,
        description=(
            "Fernet keys (`cryptography`), comma-separated: the first encrypts, every one "
            "decrypts (rotation: put the new key first, run `order-service rotate-secrets`, then "
            "drop the old). Encrypts what the service must keep secret at rest: DO tokens added "
            "through the API (SPEC section 13) and first-access passwords (section 14). Unset: "
            "those two features answer `409 SECRETS_KEY_REQUIRED` and everything else works"
        ),
    )
    digitalocean_regions: RegionList = Field(
        default=(),
        description=(
            "The region slugs customers may choose, comma-separated; unset: every region DO "
            "offers for the plan (SPEC section 14)"
        ),
        examples=["sgp1,nyc3"],
    )
    digitalocean_catalog_ttl: Duration = Field(
        default=timedelta(minutes=10),
        description="How long DO's region and size lists are kept (SPEC section 14)",
    )
    digitalocean_account_check_interval: Duration = Field(
        default=timedelta(minutes=5),
        description=(
            "How often each account's token and droplet limit are checked again (SPEC section 13)"
        ),
    )
    credentials_ttl: Duration = Field(
        default=timedelta(days=3),
        description=(
            "How long after ACTIVE the owner can read a first-access password; then it is erased "
            "(SPEC section 14)"
        ),
    )
    renewal_invoice_lead: Duration = Field(
        default=timedelta(days=7),
        description=(
            "This long before `expiresAt` the service opens the next period's renewal by itself "
            "(SPEC section 9); `0`: never"
        ),
    )
    worker_port: int = Field(
        default=3334,
        ge=1,
        le=65535,
        description="Where `order-service worker` serves health and metrics (SPEC section 8)",
    )
