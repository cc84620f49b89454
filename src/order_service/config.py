"""Settings of SPEC section 2, read from the environment and a `.env` file.

Everything that configures the service lives here, so the rest of the code
receives one validated `Settings` object and never reads `os.environ`. Each
field's `description` is its documentation: `docs/configuration.md` and
`.env.example` are generated from them (`order-service config-docs`,
config_docs.py). How the values that are more than a string or a number are
read lives in config_values.py.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import BaseModel, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from order_service.config_duties import V12, DigitalOcean, Lifecycle, Provisioning, Webhooks
from order_service.config_service import (
    Authentication,
    Catalog,
    Database,
    HttpServer,
    Logging,
    Pools,
)
from order_service.config_values import (
    ConfigError,
    OperatorKey,
    parse_cors_origins,
    parse_operator_keys,
    parse_secret_keys,
)

#: The groups of settings, in the order docs/configuration.md shows them.
GROUPS: tuple[type[BaseModel], ...] = (
    Database,
    Pools,
    HttpServer,
    Catalog,
    Authentication,
    DigitalOcean,
    Provisioning,
    Lifecycle,
    Webhooks,
    V12,
    Logging,
)

__all__ = ["ConfigError", "DatabaseSettings", "OperatorKey", "Settings", "load_settings"]


class DatabaseSettings(BaseSettings, Database):
    """What `migrate` and `seed` need: only the database, no secrets."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )


class Settings(
    # Listed last first: pydantic then keeps the fields in the order of GROUPS.
    Logging,
    V12,
    Webhooks,
    Lifecycle,
    Provisioning,
    DigitalOcean,
    Authentication,
    Catalog,
    HttpServer,
    Pools,
    DatabaseSettings,
):
    """Everything `serve` needs (SPEC section 2): every group, in the order of GROUPS."""

    @model_validator(mode="after")
    def _check_durations(self) -> Settings:
        for name, field in type(self).model_fields.items():
            values = getattr(self, name)
            if field.annotation is timedelta:
                values = (values,)
            elif field.annotation != tuple[timedelta, ...]:
                continue
            if any(value < timedelta(0) for value in values):
                raise ConfigError(f"{name.upper()} must not be negative")
        for name in POSITIVE_DURATIONS:
            if getattr(self, name) <= timedelta(0):
                raise ConfigError(f"{name.upper()} must be greater than zero")
        if not self.webhook_retry_schedule:
            raise ConfigError("WEBHOOK_RETRY_SCHEDULE needs at least one wait")
        # Reminders are sent largest threshold first.
        self.expiry_reminders = tuple(sorted(set(self.expiry_reminders), reverse=True))
        return self

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
        return parse_operator_keys(_secret(self.internal_api_key), _secret(self.internal_api_keys))

    @cached_property
    def cors_origin_list(self) -> tuple[str, ...]:
        """CORS_ORIGINS as a tuple (empty: no cross-origin access); ConfigError if malformed."""
        return parse_cors_origins(self.cors_origins or "")

    @cached_property
    def secret_keys(self) -> tuple[bytes, ...]:
        """SECRETS_KEY as Fernet keys, first (the encrypting one) first; empty when unset.
        ConfigError naming the entry by position (never by content) when one is malformed."""
        return parse_secret_keys(_secret(self.secrets_key))

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


# Durations that must be more than zero (the others may be 0, e.g. "never").
POSITIVE_DURATIONS = (
    "action_timeout",
    "lifecycle_scan_interval",
    "webhook_timeout",
    "http_keep_alive_timeout",
    "digitalocean_catalog_ttl",
    "digitalocean_account_check_interval",
    "credentials_ttl",
)


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""


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
