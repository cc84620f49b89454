"""The settings of the API process, by area: database, HTTP, catalog, auth, logging.

One model per section of docs/configuration.md; `config.Settings` is these
and the duties' groups (config_duties.py) together. Each field's
`description` is its documentation and each class's docstring the
introduction of its section: `order-service config-docs` (config_docs.py)
writes docs/configuration.md and .env.example from them, so a setting is
described once, here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field, SecretStr, field_validator

from order_service.config_values import (
    ConfigError,
    Duration,
    OptionalSecret,
    OptionalText,
    normalise_algorithm,
    unescape_newlines,
)

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./order-service.db"


class Database(BaseModel):
    """Database.

    PostgreSQL in production; SQLite (the default) for one process with zero
    setup. `order-service migrate` upgrades it to the latest schema.
    """

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description=(
            "SQLAlchemy async URL: `sqlite+aiosqlite://` (one process, zero setup) or, in "
            "production, `postgresql+asyncpg://USER:PASSWORD@HOST:5432/DBNAME`"
        ),
    )

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


class Pools(BaseModel):
    """Connections and reads under load.

    The request path's and the background duties' connections per process, and
    how a payment storm leaves room for reads (measured: bench/analysis.md, storm).
    """

    database_pool_size: int = Field(
        default=20,
        ge=1,
        le=200,
        description=(
            "The request path's connections per process, all kept open. On PostgreSQL half "
            "serve the GET endpoints (an asyncpg pool, no transaction) and half every other "
            "request (SQLAlchemy's pool), so reads never wait behind a burst of writes"
        ),
    )
    database_background_pool_size: int = Field(
        default=5,
        ge=1,
        le=100,
        description=(
            "The background duties' own connections per process (PostgreSQL): a burst of "
            "provisioning, action, lifecycle or delivery writes never takes a connection a "
            "request waits for"
        ),
    )
    payment_concurrency: int = Field(
        default=4,
        ge=1,
        le=200,
        description=(
            "Payment requests at work at once per process; the rest wait at the door (after "
            "their body arrived, before routing, auth and the transaction), so a payment storm "
            "leaves the pool and the event loop to reads. 2 keeps reads faster through a burst, "
            "at 15-24% of the steady payment rate (bench/analysis.md, storm)"
        ),
    )
    yield_to_reads: bool = Field(
        default=True,
        description=(
            "Each statement of an admitted payment and of the background duties (but the event "
            "relay and webhook deliveries) first waits until the GET requests in flight when it "
            "asks have been answered (never for later ones, at most 25 ms), so reads stay fast "
            "through a payment storm (reads_first.py); `false`: writes never wait for reads"
        ),
    )
    background_thread: bool = Field(
        default=True,
        description=(
            "PostgreSQL: run the background duties on an event loop of their own (a thread of "
            "the process), so a burst of provisioning does not queue requests behind it; "
            "`false`: one loop for both (SQLite always)"
        ),
    )


class HttpServer(BaseModel):
    """HTTP server.

    Where and how `order-service serve` listens.
    """

    host: str = Field(default="0.0.0.0", description="Where `serve` listens: the address")
    port: int = Field(default=3333, ge=1, le=65535, description="Where `serve` listens: the port")
    http_keep_alive_timeout: Duration = Field(
        default=timedelta(seconds=75),
        description=(
            "How long `serve` keeps an idle client connection open. Keep it above the idle "
            "timeouts of the clients and proxies in front (httpx 5 s, load balancers often "
            "60 s): a server that closes first races a client reusing the connection, and that "
            "request is reset unanswered (uvicorn's own 5 s did, about one payment storm in five)"
        ),
    )
    max_body_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="Largest request body accepted; a bigger one is `413` before it is parsed",
    )


class Catalog(BaseModel):
    """catalog-service.

    Where prices, plans, images and coupons come from (SPEC section 6).
    """

    catalog_service_url: str = Field(
        default="http://localhost:4000", description="catalog-service base URL"
    )
    catalog_service_timeout_ms: int = Field(
        default=5000, ge=1, description="Per-request timeout to catalog-service, in milliseconds"
    )


class Authentication(BaseModel):
    """Authentication and operators.

    Users send a bearer JWT (the user id is its `sub`); operators call
    `/api/v1/internal/*` with an `X-API-Key`.

    **Operator keys and their rotation.** Every key in `INTERNAL_API_KEY` and
    `INTERNAL_API_KEYS` is accepted as `X-API-Key`; each is compared in constant
    time, all of them on every request. A change made with `INTERNAL_API_KEY` is
    recorded as actor `admin`, one made with a named key as `admin:<name>` (e.g.
    `admin:billing-bot`). An entry without `=`, an empty name or key, a name used
    twice or a key used twice stops start-up naming `INTERNAL_API_KEYS` (never
    showing a key). Keys never appear in logs. To rotate a key without downtime:
    add the new one (`INTERNAL_API_KEYS=ops-2025=<old>,ops-2026=<new>`) and
    restart; move the clients to the new key; then remove the old entry and
    restart again.

    **Browsers (CORS).** `CORS_ORIGINS=http://localhost:4200,https://app.example.com`
    lets a frontend on those origins call the API with a bearer JWT: methods GET,
    POST, PATCH, DELETE; request headers `Authorization`, `Content-Type`,
    `Idempotency-Key`, `X-Request-ID`; `X-Request-ID` is exposed to the page.
    Preflights are answered before authentication, with an `X-Request-ID` like
    every response; a refused one is `400 VALIDATION_ERROR` with
    `details.disallowed` (`origin`, `method`, `headers`). Error envelopes (401,
    404, 413, 500...) carry the CORS headers too, so the page can read them.
    `X-API-Key` is never allowed cross-origin: the ops API is not for browsers.
    `tests/integration/test_browser.py` checks this in headless Chromium.

    **Abuse limit.** A user holding `MAX_UNPAID_ORDERS_PER_USER` orders in
    `PENDING_PAYMENT` gets `429 TOO_MANY_UNPAID_ORDERS` (`details.limit`) for one
    more, until one is paid or canceled. The count is taken under a per-user lock
    (a transaction-scoped advisory lock on PostgreSQL, the write lock on SQLite),
    so concurrent creates cannot overshoot it. An idempotent replay is never
    refused.
    """

    jwt_algorithm: Annotated[str, BeforeValidator(normalise_algorithm)] = Field(
        default="RS256",
        description="`RS256` (production) or `HS256` (development only); anything else is refused",
    )
    jwt_public_key: Annotated[str | None, BeforeValidator(unescape_newlines)] = Field(
        default=None,
        description=(
            "PEM public key; required when `JWT_ALGORITHM=RS256` (on one line, literal `\\n` works)"
        ),
        examples=["-----BEGIN PUBLIC KEY-----\\nMIIBIjANBg...\\n-----END PUBLIC KEY-----"],
    )
    jwt_secret: OptionalSecret = Field(
        default=None, description="Shared secret; required when `JWT_ALGORITHM=HS256`"
    )
    jwt_issuer: OptionalText = Field(
        default=None,
        description="When set, tokens must carry this `iss`; unset (or empty): not checked",
        examples=["https://auth.example.test/"],
    )
    jwt_audience: OptionalText = Field(
        default=None,
        description="When set, tokens must carry this `aud`; unset (or empty): not checked",
        examples=["order-service"],
    )
    internal_api_key: SecretStr | None = Field(
        default=None,
        description=(
            "Required (or `INTERNAL_API_KEYS`): the `X-API-Key` of `/api/v1/internal/*`; "
            "changes made with it are recorded as actor `admin`"
        ),
    )
    internal_api_keys: SecretStr | None = Field(
        default=None,
        description=(
            "More operator keys, `name=key,name=key`: each works like `INTERNAL_API_KEY`, and "
            "the history's actor is `admin:<name>` (two keys at once let ops rotate a key "
            "without downtime). A name is 1-64 of `A-Z a-z 0-9 . _ -`; a key may contain `=`"
        ),
        examples=["ops-bot=change-me-1,billing=change-me-2"],
    )
    cors_origins: str | None = Field(
        default=None,
        description=(
            "Browser origins allowed to call the API, comma-separated (the frontend's); unset: "
            "no cross-origin access (no CORS middleware at all). `X-API-Key` is never allowed "
            "cross-origin"
        ),
        examples=["http://localhost:4200"],
    )
    max_unpaid_orders_per_user: int = Field(
        default=10,
        ge=0,
        description=(
            "One more `PENDING_PAYMENT` order than this is `429 TOO_MANY_UNPAID_ORDERS`; "
            "`0`: no limit"
        ),
    )


class Logging(BaseModel):
    """Logging.

    Each request writes one access line carrying its `X-Request-ID`, and every
    other line of that request carries the id too.
    """

    log_format: Literal["text", "json"] = Field(
        default="text", description="`text`, or `json` (one object per line; the image uses it)"
    )
    log_level: str = Field(
        default="INFO", description="Root log level: DEBUG, INFO, WARNING, ERROR"
    )
