"""OpenAPI helpers: every route declares the error envelopes it can answer."""

from __future__ import annotations

from typing import Any

from order_service.orders.schemas import ErrorEnvelope

_DESCRIPTIONS = {
    400: "VALIDATION_ERROR, INVALID_PLAN, INVALID_IMAGE, INVALID_COUPON or INVALID_DURATION",
    401: "UNAUTHORIZED: missing, invalid or expired credentials",
    403: "ORDER_ACCESS_DENIED: the order belongs to another user",
    404: "ORDER_NOT_FOUND",
    409: "ORDER_STATUS_CONFLICT, PAYMENT_STATUS_CONFLICT or IDEMPOTENCY_KEY_IN_USE",
    422: "IDEMPOTENCY_KEY_REUSED: same key, different body",
    503: "CATALOG_SERVICE_UNAVAILABLE (nothing was written; retry later)",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorEnvelope, "description": _DESCRIPTIONS[code]} for code in codes}


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI document, independent of any deployment's settings."""
    from order_service.app import create_app
    from order_service.config import load_settings

    # The document does not depend on secrets; placeholders satisfy validation.
    settings = load_settings(
        internal_api_key="placeholder",
        jwt_algorithm="HS256",
        jwt_secret="placeholder",  # noqa: S106 - not a secret: only builds the document
        _env_file=None,
    )
    return create_app(settings).openapi()
