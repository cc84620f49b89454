"""Settings of SPEC section 2, read from the environment and a `.env` file.

Everything that configures the service lives here, so the rest of the code
receives one validated `Settings` object and never reads `os.environ`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from functools import cached_property
from typing import Annotated, Literal, NamedTuple

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./order-service.db"


# Comma-separated lists of durations (EXPIRY_REMINDERS, WEBHOOK_RETRY_SCHEDULE):
# NoDecode keeps pydantic-settings from reading them as JSON.
DurationList = Annotated[tuple[timedelta, ...], NoDecode]


class ConfigError(Exception):
    """A setting is missing or contradicts another; the message names the variable."""


class DatabaseSettings(BaseSettings):
    """What `migrate` and `seed` need: only the database, no secrets."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    database_url: str = DEFAULT_DATABASE_URL

    @field_validator("database_url")
    @classmethod
    def _check_database_scheme(cls, value: str) -> str:
        # Checked here, not only in Settings, so `migrate` and `seed` also stop
        # with one line instead of a driver's stack trace. ConfigError is not a
        # ValueError, so pydantic lets it through unchanged.
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ConfigError(
                "DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        return value


class Settings(DatabaseSettings):
    """Everything `serve` needs (SPEC section 2)."""

    # The request path's connections per process, all kept open (no overflow,
    # see db.py). On PostgreSQL half serve the GET endpoints (an asyncpg pool)
    # and half every other request (SQLAlchemy's pool): request_pool_split.
    database_pool_size: int = Field(default=20, ge=1, le=200)
    # The background duties' own pool (PostgreSQL): a burst of provisioning,
    # action or delivery writes never takes a connection a request waits for.
    database_background_pool_size: int = Field(default=5, ge=1, le=100)
    # Payment transactions running at once per process; more wait their turn
    # before touching the database, so a payment storm leaves the event loop
    # and the pool to reads (docs/benchmarks.md, storm).
    payment_concurrency: int = Field(default=4, ge=1, le=200)
    # A payment's and a background duty's statements wait for the GETs in
    # flight when they ask (reads_first.py), so reads stay fast through a storm.
    yield_to_reads: bool = True
    # Run the background duties on an event loop of their own (a thread of the
    # process), so a burst of background work does not queue requests behind it
    # (docs/benchmarks.md, storm). PostgreSQL only: SQLite shares one engine.
    background_thread: bool = True
    host: str = "0.0.0.0"
    port: int = Field(default=3333, ge=1, le=65535)
    # How long an idle client connection stays open. Longer than the idle
    # timeouts of the clients and proxies in front (httpx 5 s, load balancers
    # 60 s): a server that closes first races a client reusing the connection,
    # and that request is reset unanswered (uvicorn's 5 s did, in the storm).
    http_keep_alive_timeout: timedelta = timedelta(seconds=75)

    catalog_service_url: str = "http://localhost:4000"
    catalog_service_timeout_ms: int = Field(default=5000, ge=1)

    jwt_algorithm: str = "RS256"
    jwt_public_key: str | None = None
    jwt_secret: SecretStr | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None

    internal_api_key: SecretStr | None = None
    # --- operator keys, browser origins, abuse limit (SPEC section 2) ---
    # `name=key,name=key`: more X-API-Keys, each with a name (actor `admin:<name>`).
    internal_api_keys: SecretStr | None = None
    # Comma-separated browser origins; unset or empty: no CORS middleware at all.
    cors_origins: str | None = None
    # One more PENDING_PAYMENT order than this is 429; 0: no limit.
    max_unpaid_orders_per_user: int = Field(default=10, ge=0)

    digitalocean_api_url: str = "https://api.digitalocean.com"
    digitalocean_api_token: SecretStr | None = None
    digitalocean_default_region: str = "sgp1"
    # Our own share of DO's per-token limits (250/min, 5,000/h), with headroom
    # because a request reaches DO a little after we count it.
    digitalocean_rate_per_minute: int = Field(default=225, ge=1, le=250)
    digitalocean_rate_per_hour: int = Field(default=4750, ge=1, le=5000)

    provisioning_poll_interval_ms: int = Field(default=5000, ge=10)
    provisioning_max_attempts: int = Field(default=60, ge=1)
    # Turn the background provisioner off (e.g. an API-only replica). On by default.
    provisioning_enabled: bool = True
    # How long a replica's claim on a task lasts without renewal: after a crash,
    # another replica (or the restarted process) takes the task over this late.
    provisioning_lease_seconds: float = Field(default=30.0, gt=0)

    # --- v1.1: durations are ISO 8601 (P7D, PT90S, PT0.5S) or plain seconds ---
    action_timeout: timedelta = timedelta(minutes=10)
    lifecycle_scan_interval: timedelta = timedelta(seconds=30)
    # Turn the lifecycle scanner off (e.g. an API-only replica). On by default.
    lifecycle_enabled: bool = True
    unpaid_order_ttl: timedelta = timedelta(days=7)  # 0: never
    expiry_reminders: DurationList = (timedelta(days=7), timedelta(days=3), timedelta(days=1))
    suspend_grace: timedelta = timedelta(days=1)
    terminate_after: timedelta = timedelta(days=7)
    # A suspension's graceful SHUTDOWN gets this long before a hard POWER_OFF (SPEC §9).
    shutdown_grace: timedelta = timedelta(minutes=2)
    webhook_retry_schedule: DurationList = (
        timedelta(seconds=5),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=5),
        timedelta(hours=10),
        timedelta(hours=10),
    )
    webhook_timeout: timedelta = timedelta(seconds=10)
    event_retention: timedelta = timedelta(days=30)

    # --- v1.2 (SPEC sections 2, 12-15) ---
    # Fernet keys, comma-separated: the first encrypts, every one decrypts.
    secrets_key: SecretStr | None = None
    # Region slugs customers may choose, comma-separated; unset: every region DO offers.
    digitalocean_regions: Annotated[tuple[str, ...], NoDecode] = ()
    digitalocean_catalog_ttl: timedelta = timedelta(minutes=10)
    digitalocean_account_check_interval: timedelta = timedelta(minutes=5)
    credentials_ttl: timedelta = timedelta(days=3)
    renewal_invoice_lead: timedelta = timedelta(days=7)  # 0: never
    worker_port: int = Field(default=3334, ge=1, le=65535)

    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    # Largest request body accepted; anything bigger is 413 before it is parsed.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    @field_validator("jwt_public_key", mode="before")
    @classmethod
    def _unescape_newlines(cls, value: object) -> object:
        # A PEM key passed through one env line arrives with literal "\n".
        if isinstance(value, str):
            value = value.replace("\\n", "\n").strip()
            return value or None
        return value

    @field_validator(
        "jwt_issuer",
        "jwt_audience",
        "jwt_secret",
        "digitalocean_api_token",
        "secrets_key",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `JWT_ISSUER=` in a .env file means "not set", not "must equal ''".
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("expiry_reminders", "webhook_retry_schedule", mode="before")
    @classmethod
    def _split_durations(cls, value: object) -> object:
        # "P7D,P3D,P1D" from the environment; empty means none.
        if isinstance(value, str):
            return tuple(_seconds_or_iso(p.strip()) for p in value.split(",") if p.strip())
        return value

    @field_validator(
        "action_timeout",
        "lifecycle_scan_interval",
        "unpaid_order_ttl",
        "suspend_grace",
        "terminate_after",
        "shutdown_grace",
        "webhook_timeout",
        "event_retention",
        "http_keep_alive_timeout",
        "digitalocean_catalog_ttl",
        "digitalocean_account_check_interval",
        "credentials_ttl",
        "renewal_invoice_lead",
        mode="before",
    )
    @classmethod
    def _plain_seconds(cls, value: object) -> object:
        return _seconds_or_iso(value.strip()) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_durations(self) -> Settings:
        for name in _DURATION_SETTINGS:
            values = getattr(self, name)
            for value in values if isinstance(values, tuple) else (values,):
                if value < timedelta(0):
                    raise ConfigError(f"{name.upper()} must not be negative")
        for name in (
            "action_timeout",
            "lifecycle_scan_interval",
            "webhook_timeout",
            "http_keep_alive_timeout",
            "digitalocean_catalog_ttl",
            "digitalocean_account_check_interval",
            "credentials_ttl",
        ):
            if getattr(self, name) <= timedelta(0):
                raise ConfigError(f"{name.upper()} must be greater than zero")
        if not self.webhook_retry_schedule:
            raise ConfigError("WEBHOOK_RETRY_SCHEDULE needs at least one wait")
        # Reminders are sent largest threshold first.
        self.expiry_reminders = tuple(sorted(set(self.expiry_reminders), reverse=True))
        return self

    @field_validator("jwt_algorithm", mode="before")
    @classmethod
    def _normalise_algorithm(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_required(self) -> Settings:
        if not self.operator_keys:  # also checks INTERNAL_API_KEYS
            raise ConfigError(
                "INTERNAL_API_KEY (or INTERNAL_API_KEYS) is required "
                "(the X-API-Key of /api/v1/internal/*)"
            )
        _ = self.cors_origin_list  # checks CORS_ORIGINS
        _ = self.secret_keys  # checks SECRETS_KEY
        if self.jwt_algorithm == "RS256":
            if not self.jwt_public_key:
                raise ConfigError("JWT_PUBLIC_KEY is required when JWT_ALGORITHM=RS256")
            try:
                key = load_pem_public_key(self.jwt_public_key.encode())
            except (ValueError, TypeError) as exc:
                raise ConfigError("JWT_PUBLIC_KEY is not a PEM public key") from exc
            if not isinstance(key, RSAPublicKey):
                raise ConfigError("JWT_PUBLIC_KEY must be an RSA public key for RS256")
        elif self.jwt_algorithm == "HS256":
            if self.jwt_secret is None or not self.jwt_secret.get_secret_value():
                raise ConfigError("JWT_SECRET is required when JWT_ALGORITHM=HS256")
        else:
            raise ConfigError(f"JWT_ALGORITHM must be RS256 or HS256, not {self.jwt_algorithm!r}")
        return self

    @property
    def jwt_verification_key(self) -> str:
        """The key PyJWT verifies with: the PEM public key or the shared secret."""
        if self.jwt_algorithm == "RS256":
            assert self.jwt_public_key is not None
            return self.jwt_public_key
        assert self.jwt_secret is not None
        return self.jwt_secret.get_secret_value()

    @cached_property
    def operator_keys(self) -> tuple[OperatorKey, ...]:
        """INTERNAL_API_KEY (no name) and each INTERNAL_API_KEYS entry; ConfigError if malformed."""
        keys = []
        if self.internal_api_key is not None and self.internal_api_key.get_secret_value():
            keys.append(OperatorKey(None, self.internal_api_key.get_secret_value().encode()))
        raw = self.internal_api_keys.get_secret_value() if self.internal_api_keys else ""
        names: set[str] = set()
        # Messages name the entry by position, never by content: it may be a key.
        for position, entry in enumerate(raw.split(","), start=1):
            entry = entry.strip()
            if not entry and not raw.strip():
                break  # set but empty: no named keys
            name, sep, key = entry.partition("=")  # a key may contain "=" (base64)
            name, key = name.strip(), key.strip()
            if not sep or not name or not key:
                raise ConfigError(f"INTERNAL_API_KEYS: entry {position} is not name=key")
            if not _KEY_NAME.fullmatch(name):
                raise ConfigError(
                    f"INTERNAL_API_KEYS: entry {position}: a name is 1-64 of A-Z a-z 0-9 . _ -"
                )
            if name in names:
                raise ConfigError(f"INTERNAL_API_KEYS: the name {name!r} is used twice")
            names.add(name)
            keys.append(OperatorKey(name, key.encode()))
        if len({k.key for k in keys}) != len(keys):
            raise ConfigError(
                "INTERNAL_API_KEYS: two keys are the same (with each other or INTERNAL_API_KEY)"
            )
        return tuple(keys)

    @cached_property
    def cors_origin_list(self) -> tuple[str, ...]:
        """CORS_ORIGINS as a tuple (empty: no cross-origin access); ConfigError if malformed."""
        origins = []
        for origin in (self.cors_origins or "").split(","):
            # A browser's Origin has no path and no trailing slash: accept the slash.
            origin = origin.strip().rstrip("/")
            if not origin:
                continue
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise ConfigError(
                    f"CORS_ORIGINS: {origin!r} is not an origin like http://localhost:4200"
                )
            origins.append(origin)
        return tuple(origins)

    @field_validator("digitalocean_regions", mode="before")
    @classmethod
    def _split_regions(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip().lower() for part in value.split(",") if part.strip())
        return value

    @field_validator("digitalocean_regions")
    @classmethod
    def _check_regions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for slug in value:
            if not _REGION_SLUG.fullmatch(slug):
                raise ConfigError(f"DIGITALOCEAN_REGIONS: {slug!r} is not a region slug like sgp1")
        return tuple(sorted(set(value)))

    @cached_property
    def secret_keys(self) -> tuple[bytes, ...]:
        """SECRETS_KEY as Fernet keys, first (the encrypting one) first; empty when unset.
        ConfigError naming the entry by position (never by content) when one is malformed."""
        raw = self.secrets_key.get_secret_value() if self.secrets_key else ""
        keys = []
        for position, entry in enumerate(raw.split(","), start=1):
            entry = entry.strip()
            if not entry:
                continue
            try:
                Fernet(entry.encode())
            except (ValueError, TypeError):
                raise ConfigError(
                    f"SECRETS_KEY: entry {position} is not a Fernet key "
                    "(32 bytes, url-safe base64: Fernet.generate_key())"
                ) from None
            keys.append(entry.encode())
        return tuple(keys)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def request_pool_split(self) -> tuple[int, int]:
        """(GET endpoints' read pool, everything else's pool): DATABASE_POOL_SIZE split
        in two on PostgreSQL, each at least 1; SQLite has no read pool."""
        if self.is_sqlite:
            return 0, self.database_pool_size
        reads = max(1, self.database_pool_size // 2)
        return reads, max(1, self.database_pool_size - reads)

    @cached_property
    def poll_interval_s(self) -> float:
        return self.provisioning_poll_interval_ms / 1000

    @cached_property
    def provisioning_deadline_s(self) -> float:
        return self.provisioning_poll_interval_ms * self.provisioning_max_attempts / 1000


def _seconds_or_iso(value: str) -> str | float:
    """Plain seconds ("90", "0.5") as a number: pydantic reads only ISO 8601 from a string."""
    try:
        return float(value)
    except ValueError:
        return value


_DURATION_SETTINGS = (
    "action_timeout",
    "lifecycle_scan_interval",
    "unpaid_order_ttl",
    "expiry_reminders",
    "suspend_grace",
    "terminate_after",
    "shutdown_grace",
    "webhook_retry_schedule",
    "webhook_timeout",
    "event_retention",
    "http_keep_alive_timeout",
    "digitalocean_catalog_ttl",
    "digitalocean_account_check_interval",
    "credentials_ttl",
    "renewal_invoice_lead",
)


class OperatorKey(NamedTuple):
    """One accepted X-API-Key: `name` is None for INTERNAL_API_KEY."""

    name: str | None
    key: bytes


_KEY_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_ORIGIN = re.compile(r"https?://[^/\s,]+")
_REGION_SLUG = re.compile(r"[a-z0-9]{2,16}")


def load_settings(**overrides: object) -> Settings:
    """Build Settings, turning any problem into one ConfigError naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ConfigError:
        raise
    except ValidationError as exc:
        raise ConfigError(_describe_validation_error(exc)) from None


def _describe_validation_error(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, ConfigError):
            return str(cause)
        variable = "_".join(str(part) for part in error["loc"]).upper() or "settings"
        problems.append(f"{variable}: {error['msg']}")
    return "; ".join(problems)
