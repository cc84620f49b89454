"""Errors are types: each carries its SPEC code and HTTP status.

One set of handlers renders every error — ours, validation, unknown routes,
wrong methods — as the SPEC envelope `{"error": {"code", "message", "details"?}}`.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from order_service.jsonresponse import json_response

logger = logging.getLogger("order_service.errors")


class AppError(Exception):
    code = "INTERNAL_ERROR"
    status_code = 500
    message = "Internal server error"

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None):
        self.message = message or self.message
        self.details = details
        super().__init__(self.message)


class ValidationFailed(AppError):
    code, status_code, message = "VALIDATION_ERROR", 400, "Request validation failed"


class Unauthorized(AppError):
    code, status_code, message = "UNAUTHORIZED", 401, "Authentication required"


class OrderAccessDenied(AppError):
    code, status_code, message = "ORDER_ACCESS_DENIED", 403, "This order belongs to another user"


class OrderNotFound(AppError):
    code, status_code, message = "ORDER_NOT_FOUND", 404, "Order not found"


class InvalidPlan(AppError):
    code, status_code, message = "INVALID_PLAN", 400, "Plan is unknown or inactive"


class InvalidImage(AppError):
    code, status_code, message = (
        "INVALID_IMAGE",
        400,
        "Image is unknown, inactive, or not allowed for this plan",
    )


class InvalidCoupon(AppError):
    code, status_code, message = "INVALID_COUPON", 400, "Coupon cannot be applied"


class InvalidDuration(AppError):
    code, status_code, message = "INVALID_DURATION", 400, "The plan has no price for this duration"


class PaymentStatusConflict(AppError):
    code, status_code, message = (
        "PAYMENT_STATUS_CONFLICT",
        409,
        "Payment status can only change while the order awaits payment",
    )


class OrderStatusConflict(AppError):
    code, status_code, message = (
        "ORDER_STATUS_CONFLICT",
        409,
        "The order's status does not allow this",
    )


class IdempotencyKeyReused(AppError):
    code, status_code, message = (
        "IDEMPOTENCY_KEY_REUSED",
        422,
        "This Idempotency-Key was used with a different request body",
    )


class IdempotencyKeyInUse(AppError):
    code, status_code, message = (
        "IDEMPOTENCY_KEY_IN_USE",
        409,
        "A request with this Idempotency-Key is still being processed",
    )


class CatalogUnavailable(AppError):
    code, status_code, message = (
        "CATALOG_SERVICE_UNAVAILABLE",
        503,
        "catalog-service is unavailable; nothing was changed, try again",
    )


class DatabaseUnavailable(AppError):
    code, status_code, message = (
        "DATABASE_UNAVAILABLE",
        503,
        "The database is unavailable; nothing was changed, try again",
    )


class TooManyUnpaidOrders(AppError):
    code, status_code, message = (
        "TOO_MANY_UNPAID_ORDERS",
        429,
        "Too many unpaid orders: pay or cancel one first",
    )


class PayloadTooLarge(AppError):
    code, status_code, message = "PAYLOAD_TOO_LARGE", 413, "Request body is too large"


# --- v1.1 (SPEC section 5) ---


class RenewalPending(AppError):
    code, status_code, message = (
        "RENEWAL_PENDING",
        409,
        "The order already has an unpaid renewal",
    )


class ActionInProgress(AppError):
    code, status_code, message = (
        "ACTION_IN_PROGRESS",
        409,
        "The server already has an action pending or running",
    )


class ServiceSuspended(AppError):
    code, status_code, message = (
        "SERVICE_SUSPENDED",
        409,
        "The service is suspended",
    )


class RenewalNotFound(AppError):
    code, status_code, message = "RENEWAL_NOT_FOUND", 404, "Renewal not found"


class ActionNotFound(AppError):
    code, status_code, message = "ACTION_NOT_FOUND", 404, "Action not found"


class WebhookNotFound(AppError):
    code, status_code, message = "WEBHOOK_NOT_FOUND", 404, "Webhook endpoint not found"


class DeliveryNotFound(AppError):
    code, status_code, message = "DELIVERY_NOT_FOUND", 404, "Delivery not found"


# --- v1.2 (SPEC sections 5, 13-15) ---


class InvalidRegion(AppError):
    code, status_code, message = "INVALID_REGION", 400, "The region is not offered for this plan"


class InvalidSshKey(AppError):
    code, status_code, message = (
        "INVALID_SSH_KEY",
        400,
        "Not an accepted SSH public key, or not one of your keys",
    )


class SshKeyExists(AppError):
    code, status_code, message = "SSH_KEY_EXISTS", 409, "You already have this SSH key"


class TooManySshKeys(AppError):
    code, status_code, message = "TOO_MANY_SSH_KEYS", 409, "You already have 20 SSH keys"


class SshKeyNotFound(AppError):
    code, status_code, message = "SSH_KEY_NOT_FOUND", 404, "SSH key not found"


class PlanChangeNotFound(AppError):
    code, status_code, message = "PLAN_CHANGE_NOT_FOUND", 404, "Plan change not found"


class DoAccountNotFound(AppError):
    code, status_code, message = "DO_ACCOUNT_NOT_FOUND", 404, "DigitalOcean account not found"


class CredentialsExpired(AppError):
    code, status_code, message = (
        "CREDENTIALS_EXPIRED",
        410,
        "The first-access password was erased (CREDENTIALS_TTL passed)",
    )


class PlanChangePending(AppError):
    code, status_code, message = (
        "PLAN_CHANGE_PENDING",
        409,
        "The order has an unpaid or running plan change",
    )


class PlanChangeNotPossible(AppError):
    code, status_code, message = (
        "PLAN_CHANGE_NOT_POSSIBLE",
        409,
        "The target plan cannot take this server",
    )


class InvalidDoToken(AppError):
    code, status_code, message = "INVALID_DO_TOKEN", 400, "DigitalOcean refused this token"


class DoAccountExists(AppError):
    code, status_code, message = "DO_ACCOUNT_EXISTS", 409, "An account of that name exists"


class DoAccountInUse(AppError):
    code, status_code, message = (
        "DO_ACCOUNT_IN_USE",
        409,
        "The account still holds droplets of live orders",
    )


class SecretsKeyRequired(AppError):
    code, status_code, message = (
        "SECRETS_KEY_REQUIRED",
        409,
        "This needs SECRETS_KEY: the service keeps this secret encrypted and has no key",
    )


class DigitalOceanUnavailable(AppError):
    code, status_code, message = (
        "DIGITALOCEAN_UNAVAILABLE",
        503,
        "DigitalOcean's region and size lists are needed and none was ever fetched; try again",
    )


# Status codes Starlette raises by itself (unknown route, wrong method, ...)
_HTTP_CODES = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


def error_response(
    status_code: int, code: str, message: str, details: Any = None, headers: Any = None
) -> Response:
    return json_response(error_body(code, message, details), status_code, headers=headers)


def _validation_details(exc: RequestValidationError) -> dict[str, Any]:
    fields = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        # Drop the "body"/"query"/"path" prefix: clients know their fields by name.
        where = loc[0] if loc else "body"
        field = ".".join(loc[1:]) or where
        fields.append({"field": field, "in": where, "message": err.get("msg", "invalid")})
    return {"fields": fields}


async def _app_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    return error_response(exc.status_code, exc.code, exc.message, exc.details)


async def _validation_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(
        400, "VALIDATION_ERROR", "Request validation failed", _validation_details(exc)
    )


async def _http_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
    message = exc.detail if isinstance(exc.detail, str) else "HTTP error"
    return error_response(exc.status_code, code, message, headers=exc.headers)


# Connection-level failures, raised by the driver while connecting or found in
# the cause chain of a plain DBAPIError (e.g. PostgreSQL refusing a new
# connection: "too many clients already").
_CONNECTION_CAUSES: tuple[type[Exception], ...] = (
    ConnectionError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
)

# What a lost or refused database connection surfaces as: SQLAlchemy's wrapped
# DBAPI errors, its pool timeout, and the driver's own connection errors.
DATABASE_DOWN: tuple[type[Exception], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    *_CONNECTION_CAUSES,
)


def _is_connection_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, _CONNECTION_CAUSES):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def _dbapi_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, sqlalchemy.exc.DBAPIError)
    if exc.connection_invalidated or _is_connection_failure(exc):
        return await _database_down_handler(request, exc)
    # Anything else from the database is a bug of ours: the generic 500 path.
    logger.error("database error", exc_info=exc)
    return error_response(500, "INTERNAL_ERROR", "Internal server error")


async def _database_down_handler(_request: Request, exc: Exception) -> Response:
    # A client can retry this; 500 would say the request itself is at fault.
    first_line = next(iter(str(exc).splitlines()), "")
    logger.error("database unavailable: %s: %s", type(exc).__name__, first_line)
    error = DatabaseUnavailable()
    return error_response(error.status_code, error.code, error.message)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    for error_type in DATABASE_DOWN:
        app.add_exception_handler(error_type, _database_down_handler)
    # More specific classes above win; this catches the remaining wrapped errors.
    app.add_exception_handler(sqlalchemy.exc.DBAPIError, _dbapi_error_handler)
    # Unexpected exceptions are turned into the 500 envelope by the request
    # middleware (order_service.middleware), which also logs the traceback.
