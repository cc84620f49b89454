"""A webhook receiver for tests (a real HTTP server with tests/servers.py), and helpers.

The receiver records every request (headers, body) and answers from a plan:
a queue of status codes, then `default_status`; `hang` makes it hold every
answer until released (an endpoint that never answers).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from standardwebhooks import Webhook

from tests.conftest import INTERNAL

WEBHOOKS = "/api/v1/internal/webhooks"
EVENTS = "/api/v1/internal/events"


@dataclass
class Received:
    headers: dict[str, str]
    body: str
    at: float
    status: int = 0  # what the receiver answered (0: not yet)

    def verify(self, secret: str) -> dict[str, Any]:
        """The event, if the signature is good for `secret` (raises otherwise)."""
        return Webhook(secret).verify(self.body, self.headers)


@dataclass
class Receiver:
    default_status: int = 200
    plan: list[int] = field(default_factory=list)
    hang: bool = False
    requests: list[Received] = field(default_factory=list)
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        self.hang = False
        self._release.set()

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in self.requests if f'"type":"{event_type}"' in r.body]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                # The sender died between its headers and its body (a SIGKILLed
                # service): no request arrived, as a real receiver would see it.
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        received = Received(headers, b"".join(chunks).decode(), time.monotonic())
        self.requests.append(received)
        if self.hang:
            await self._release.wait()
        status = self.plan.pop(0) if self.plan else self.default_status
        received.status = status
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def eventually(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool],
    within: float = 10.0,
    what: str = "condition",
) -> None:
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {within} s")
        await asyncio.sleep(0.02)


async def register(
    client: httpx.AsyncClient, url: str, events: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        WEBHOOKS, json={"url": url, "events": events or ["*"], **extra}, headers=INTERNAL
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def deliveries(
    client: httpx.AsyncClient, endpoint_id: str, status: str | None = None
) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"limit": 100}
    if status:
        params["status"] = status
    response = await client.get(
        f"{WEBHOOKS}/{endpoint_id}/deliveries", params=params, headers=INTERNAL
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def read_feed(client: httpx.AsyncClient, after: int = 0, **params: Any) -> dict[str, Any]:
    response = await client.get(EVENTS, params={"after": after, **params}, headers=INTERNAL)
    assert response.status_code == 200, response.text
    return response.json()


async def whole_feed(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        page = await read_feed(client, after, limit=500)
        if not page["data"]:
            return events
        events.extend(page["data"])
        after = page["meta"]["next"]
