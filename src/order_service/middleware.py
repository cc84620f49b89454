"""The outermost request layer (pure ASGI, no per-request objects beyond need).

For every HTTP request it: takes `X-Request-ID` (or makes one) and echoes it,
refuses bodies over the limit with 413, turns an unexpected exception into
the 500 envelope (logging the traceback, returning no internals), writes one
access log line and records Prometheus metrics by route template.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from order_service import metrics
from order_service.errors import error_body
from order_service.jsonresponse import dumps
from order_service.logging_setup import request_id_var

access_log = logging.getLogger("order_service.access")
error_log = logging.getLogger("order_service.errors")

# A caller's request id is echoed only if it is short and harmless.
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class BodyTooLarge(HTTPException):
    # An HTTPException because FastAPI turns any other exception raised while it
    # reads the body into a 400; this one it re-raises, and the error handlers
    # render it as 413 PAYLOAD_TOO_LARGE.
    def __init__(self) -> None:
        super().__init__(413, "Request body is too large")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        token = request_id_var.set(request_id)
        header = (b"x-request-id", request_id.encode())
        state: dict[str, Any] = {"status": 500, "started": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            declared = _content_length(scope)
            if declared is not None and declared > self.max_body_bytes:
                await self._send_error(
                    send_with_id, 413, "PAYLOAD_TOO_LARGE", "Request body is too large"
                )
            else:
                await self.app(scope, self._limited(receive), send_with_id)
        except BodyTooLarge:
            if not state["started"]:
                await self._send_error(
                    send_with_id, 413, "PAYLOAD_TOO_LARGE", "Request body is too large"
                )
        except Exception:
            error_log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if not state["started"]:
                await self._send_error(send_with_id, 500, "INTERNAL_ERROR", "Internal server error")
        finally:
            self._record(scope, state["status"], time.perf_counter() - started)
            request_id_var.reset(token)

    def _limited(self, receive: Receive) -> Receive:
        received = 0
        limit = self.max_body_bytes

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge()
            return message

        return limited_receive

    @staticmethod
    async def _send_error(send: Send, status: int, code: str, message: str) -> None:
        body = dumps(error_body(code, message))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _record(scope: Scope, status: int, elapsed: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "<unmatched>"
        method = scope["method"]
        metrics.HTTP_REQUESTS.labels(method, template, str(status)).inc()
        metrics.HTTP_LATENCY.labels(method, template).observe(elapsed)
        access_log.info(
            "%s %s %s %.1fms",
            method,
            scope["path"],
            status,
            elapsed * 1000,
            extra={
                "method": method,
                "path": scope["path"],
                "route": template,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
            },
        )


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            return request_id_from(value.decode("latin-1"))
    return request_id_from(None)


def request_id_from(given: str | None) -> str:
    """The caller's X-Request-ID if it is short and harmless, else a new one."""
    if given is not None and _SAFE_REQUEST_ID.match(given):
        return given
    return uuid.uuid4().hex


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
