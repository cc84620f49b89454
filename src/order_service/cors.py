"""CORS_ORIGINS (SPEC section 2): Starlette's CORS middleware, with the SPEC's
promises kept on the preflights it answers itself (they never reach the
request middleware): an `X-Request-ID` like every response, and a refused
preflight in the error envelope rather than Starlette's plain text."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from order_service.errors import error_response
from order_service.middleware import request_id_from

# Starlette's own headers of a preflight answer that a new body replaces.
_BODY_HEADERS = {"content-type", "content-length"}


class CorsMiddleware(CORSMiddleware):
    def preflight_response(self, request_headers: Headers) -> Response:
        answer = super().preflight_response(request_headers)
        if answer.status_code == 400:
            # "Disallowed CORS origin, headers": what failed, for whoever reads it.
            failures = bytes(answer.body).decode().removeprefix("Disallowed CORS ").split(", ")
            cors_headers = {k: v for k, v in answer.headers.items() if k not in _BODY_HEADERS}
            answer = error_response(
                400,
                "VALIDATION_ERROR",
                "Cross-origin request not allowed",
                details={"disallowed": failures},
                headers=cors_headers,
            )
        answer.headers["x-request-id"] = request_id_from(request_headers.get("x-request-id"))
        return answer


def add_cors(app: FastAPI, origins: tuple[str, ...]) -> None:
    """No origins: no middleware, no cross-origin access.

    Added last, so it is the outermost of our middleware: a preflight is
    answered before authentication, and every response the layers inside
    produce carries the CORS headers, the request middleware's 413 and 500
    envelopes included (a browser hides a response without them).
    X-API-Key is deliberately not an allowed header: the ops API is not for browsers.
    """
    if not origins:
        return
    app.add_middleware(
        CorsMiddleware,
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
        expose_headers=["X-Request-ID"],
        allow_credentials=False,  # bearer tokens, no cookies
        max_age=600,
    )
