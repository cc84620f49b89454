"""Settings of SPEC section 2, read from the environment and a `.env` file.

Everything that configures the service lives here, so the rest of the code
receives one validated `Settings` object and never reads `os.environ`.
"""

from __future__ import annotations

from functools import cached_property
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./order-service.db"


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

    # Connections per process, all kept open (no overflow, see db.py).
    database_pool_size: int = Field(default=20, ge=1, le=200)
    host: str = "0.0.0.0"
    port: int = Field(default=3333, ge=1, le=65535)

    catalog_service_url: str = "http://localhost:4000"
    catalog_service_timeout_ms: int = Field(default=5000, ge=1)

    jwt_algorithm: str = "RS256"
    jwt_public_key: str | None = None
    jwt_secret: SecretStr | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None

    internal_api_key: SecretStr | None = None

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
        "jwt_issuer", "jwt_audience", "jwt_secret", "digitalocean_api_token", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `JWT_ISSUER=` in a .env file means "not set", not "must equal ''".
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("jwt_algorithm", mode="before")
    @classmethod
    def _normalise_algorithm(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_required(self) -> Settings:
        if self.internal_api_key is None or not self.internal_api_key.get_secret_value():
            raise ConfigError("INTERNAL_API_KEY is required (the X-API-Key of /api/v1/internal/*)")
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

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @cached_property
    def poll_interval_s(self) -> float:
        return self.provisioning_poll_interval_ms / 1000

    @cached_property
    def provisioning_deadline_s(self) -> float:
        return self.provisioning_poll_interval_ms * self.provisioning_max_attempts / 1000


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
