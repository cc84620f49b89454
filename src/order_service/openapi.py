"""OpenAPI helpers: every route declares the error envelopes it can answer.

Routes name the error *types* they raise; the document then shows, per HTTP
status, which codes can come back, when, and an example body of each. The
routers import these helpers, so this module imports no router and not the
app: the document itself is built by openapi_export.py.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from order_service.errors import (
    ActionInProgress,
    ActionNotFound,
    AppError,
    CatalogUnavailable,
    CredentialsExpired,
    DatabaseUnavailable,
    DeliveryNotFound,
    DigitalOceanUnavailable,
    DoAccountExists,
    DoAccountInUse,
    DoAccountNotFound,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidCoupon,
    InvalidDoToken,
    InvalidDuration,
    InvalidImage,
    InvalidPlan,
    InvalidRegion,
    InvalidSshKey,
    OrderAccessDenied,
    OrderNotFound,
    OrderStatusConflict,
    PaymentStatusConflict,
    PlanChangeNotFound,
    PlanChangeNotPossible,
    PlanChangePending,
    RenewalNotFound,
    RenewalPending,
    SecretsKeyRequired,
    ServiceSuspended,
    SshKeyExists,
    SshKeyNotFound,
    TooManySshKeys,
    TooManyUnpaidOrders,
    Unauthorized,
    ValidationFailed,
    WebhookNotFound,
)
from order_service.orders.schemas import ErrorEnvelope

# When each code is answered, and an example of its envelope (as the service sends it).
_ERRORS: dict[type[AppError], tuple[str, dict[str, Any]]] = {
    ValidationFailed: (
        "malformed body, query, header or path; `details.fields` lists each field",
        {
            "fields": [
                {
                    "field": "duration",
                    "in": "body",
                    "message": "Input should be 'MONTHLY', 'QUARTERLY', 'SEMI_ANNUAL' or 'ANNUAL'",
                }
            ]
        },
    ),
    InvalidPlan: (
        "the plan is unknown or inactive",
        {"planId": "a1000000-0000-4000-8000-000000000004"},
    ),
    InvalidImage: (
        "the image is unknown, inactive, or not allowed for the plan",
        {"imageId": "b2000000-0000-4000-8000-000000000004"},
    ),
    InvalidCoupon: ("catalog-service rejected the coupon; `details.reason` says why", {}),
    InvalidDuration: ("the plan has no active price for that duration", {}),
    Unauthorized: ("missing, invalid or expired credentials", {}),
    OrderAccessDenied: ("the order belongs to another user", {}),
    OrderNotFound: ("no order with that id (a malformed id too)", {}),
    WebhookNotFound: ("no webhook endpoint with that id (a malformed id too)", {}),
    DeliveryNotFound: ("no delivery with that id for this endpoint (a malformed id too)", {}),
    OrderStatusConflict: ("the order's status does not allow this", {}),
    ServiceSuspended: ("the order is SUSPENDED: renew it before acting on the server", {}),
    ActionInProgress: (
        "the server already has an action PENDING or IN_PROGRESS (`details.actionId`)",
        {"actionId": "c3000000-0000-4000-8000-000000000001"},
    ),
    ActionNotFound: ("no action with that id on this order (a malformed id too)", {}),
    PaymentStatusConflict: ("the order (or renewal) no longer awaits payment", {}),
    RenewalPending: (
        "the order already has an unpaid renewal (`details.renewalId`): pay or cancel it first",
        {"renewalId": "e5000000-0000-4000-8000-000000000001"},
    ),
    RenewalNotFound: ("no renewal with that id (on this order; a malformed id too)", {}),
    IdempotencyKeyInUse: ("the first request with this key is still running; retry shortly", {}),
    IdempotencyKeyReused: ("this key was used with a different body", {}),
    TooManyUnpaidOrders: (
        "the user already has MAX_UNPAID_ORDERS_PER_USER unpaid orders; pay or cancel one",
        {"limit": 10},
    ),
    InvalidSshKey: (
        "not an accepted OpenSSH public key (`details.reason` says why), or, on an order, an "
        "`sshKeyIds` entry that is not one of your keys (`details.sshKeyId`)",
        {"reason": "an RSA key of 1024 bits is too weak: at least 2048 bits"},
    ),
    SshKeyExists: (
        "you already have this key (same fingerprint); `details.sshKeyId` is the one you have",
        {"sshKeyId": "d4000000-0000-4000-8000-000000000001"},
    ),
    TooManySshKeys: ("you already have 20 SSH keys: delete one first", {"limit": 20}),
    SshKeyNotFound: ("no key of yours with that id (another user's, or a malformed id, too)", {}),
    CatalogUnavailable: ("catalog-service failed; nothing was written, retry later", {}),
    DatabaseUnavailable: ("the database is unreachable; nothing was changed, retry later", {}),
    # --- v1.2 ---
    InvalidRegion: (
        "the region is not offered for the plan (see GET /api/v1/regions?planId=)",
        {"region": "nyc2", "planId": "a1000000-0000-4000-8000-000000000001"},
    ),
    CredentialsExpired: ("the first-access password was erased after CREDENTIALS_TTL", {}),
    PlanChangePending: (
        "the order has an unpaid or running plan change (`details.planChangeId`)",
        {"planChangeId": "a7000000-0000-4000-8000-000000000001"},
    ),
    PlanChangeNotPossible: (
        "the target plan cannot take this server; `details.reason` is DISK_TOO_SMALL, "
        "SIZE_NOT_IN_REGION or IMAGE_NOT_ALLOWED",
        {"reason": "DISK_TOO_SMALL"},
    ),
    PlanChangeNotFound: ("no plan change with that id on this order (a malformed id too)", {}),
    DoAccountNotFound: ("no DigitalOcean account with that id (a malformed id too)", {}),
    InvalidDoToken: ("DigitalOcean refused the token (401/403); nothing was stored", {}),
    DoAccountExists: ("an account of that name exists (`default` included)", {}),
    DoAccountInUse: (
        "the account still holds droplets (or creates) of our orders",
        {"droplets": 3, "creating": 0},
    ),
    SecretsKeyRequired: ("the feature keeps a secret encrypted and SECRETS_KEY is unset", {}),
    DigitalOceanUnavailable: (
        "DigitalOcean is needed now and cannot be reached (and no earlier answer is kept)",
        {},
    ),
}

# Concrete messages and details as the service really sends them.
_EXAMPLE_ERRORS: dict[type[AppError], dict[str, Any]] = {
    InvalidCoupon: {
        "message": "Coupon EXPIRED10 cannot be applied",
        "details": {"reason": "EXPIRED"},
    },
    InvalidDuration: {
        "message": "Plan Basic 1GB has no active price for QUARTERLY",
        "details": {"duration": "QUARTERLY"},
    },
    Unauthorized: {"message": "Token has expired"},
    OrderStatusConflict: {
        "message": "Cannot move the order from ACTIVE to CANCELED",
        "details": {"currentStatus": "ACTIVE", "requestedStatus": "CANCELED"},
    },
    PaymentStatusConflict: {
        "message": "Order is PROVISIONING; payment status can only change while PENDING_PAYMENT",
        "details": {"currentStatus": "PROVISIONING"},
    },
    InvalidSshKey: {
        "message": "Not an accepted SSH public key: an RSA key of 1024 bits is too weak: "
        "at least 2048 bits"
    },
    TooManySshKeys: {"message": "You already have 20 SSH keys: delete one first"},
    CatalogUnavailable: {
        "details": {
            "reason": "GET /api/v1/catalog/plans/a1000000-0000-4000-8000-000000000001 timed out"
        }
    },
}

DEFAULT_ERROR_DESCRIPTION = (
    "Any other error, in the same envelope: `413 PAYLOAD_TOO_LARGE` (body over the limit), "
    "`405 METHOD_NOT_ALLOWED`, `500 INTERNAL_ERROR` (unexpected; no internals are returned)"
)


def error_example(error: type[AppError]) -> dict[str, Any]:
    """The envelope the service sends for `error`, as documented."""
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    details = _ERRORS[error][1]
    if details:
        body["details"] = details
    body.update(_EXAMPLE_ERRORS.get(error, {}))
    return {"error": body}


def error_response_doc(description: str, examples: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One documented error response: the envelope schema plus named examples."""
    return {
        "model": ErrorEnvelope,
        "description": description,
        "content": {
            "application/json": {
                "examples": {
                    name: {"summary": name, "value": value} for name, value in examples.items()
                }
            }
        },
    }


def error_responses(*errors: type[AppError]) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route that can raise `errors` (grouped by HTTP status).

    A `default` response documents the envelope of everything else (413, 405,
    500); it also keeps FastAPI from advertising its own 422 validation body,
    which this service never sends (validation errors are 400 VALIDATION_ERROR).
    """
    by_status: dict[int, list[type[AppError]]] = defaultdict(list)
    # Every documented route reads or writes the database.
    for error in (*errors, DatabaseUnavailable):
        by_status[error.status_code].append(error)
    responses: dict[int | str, dict[str, Any]] = {}
    for status in sorted(by_status):
        group = by_status[status]
        description = "; ".join(f"`{e.code}`: {_ERRORS[e][0]}" for e in group)
        responses[status] = error_response_doc(
            description, {e.code: error_example(e) for e in group}
        )
    responses["default"] = {"model": ErrorEnvelope, "description": DEFAULT_ERROR_DESCRIPTION}
    return responses
