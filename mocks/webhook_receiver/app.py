"""The receiver: every POST is verified with standardwebhooks and printed as one line.

    order.active vps-1a2b3c4d 203.0.113.7

A good signature is answered 204; a bad one 401 (and a line saying so), so
the service keeps retrying and the delivery log shows it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TextIO

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


def describe(event: dict[str, Any]) -> str:
    """`type droplet-or-order ip` (and the action or renewal, when the event is about one)."""
    data = event.get("data") or {}
    order = data.get("order") or {}
    task = order.get("provisioningTask") or {}
    name = task.get("dropletName") or (f"order-{order['id'][:8]}" if order.get("id") else "")
    parts = [event.get("type", "?"), name, task.get("ipv4Public") or ""]
    if data.get("action"):
        parts.append(f"{data['action'].get('type')} {data['action'].get('status')}")
    if data.get("renewal"):
        parts.append(f"renewal {data['renewal'].get('status')}")
    if event.get("sequence") is not None:
        parts.append(f"#{event['sequence']}")
    return " ".join(p for p in parts if p)


def create_app(secret: str | None, out: TextIO = sys.stdout) -> Callable[..., Any]:
    webhook = Webhook(secret) if secret else None

    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] == "GET" and scope["path"] == "/health":
            return await _answer(send, 200, b'{"status":"ok"}')
        if scope["method"] != "POST":
            return await _answer(send, 405, b"")
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        if webhook is None:
            say("no secret set (--secret or WEBHOOK_SECRET): not verified")
            event = json.loads(body)
        else:
            try:
                event = webhook.verify(body, headers)
            except WebhookVerificationError as exc:
                say(f"REJECTED {headers.get('webhook-id', '?')}: {exc}")
                return await _answer(send, 401, b"")
        say(describe(event))
        await _answer(send, 204, b"")

    return app


async def _answer(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
