"""A webhook endpoint for the benchmarks, in its own process on loopback.

`python -m bench.webhook_sink --port P [--secret whsec_...]` answers every POST
204 at once and records, per `webhook-id`, the wall-clock time of each
arrival (verified with `standardwebhooks` when a secret is given; a bad
signature is answered 401 and counted). `GET /_arrivals` returns
`{"arrivals": {webhook_id: [epoch, ...]}, "rejected": n}`, `GET /_count` the
number of distinct ids, so the harness reads them while the sink runs.

`--hang` makes it a dead endpoint instead: it accepts connections, reads
what is sent and never answers (the dispatcher's WEBHOOK_TIMEOUT ends each
attempt), which is what a stuck consumer looks like from the service.

No logging per request: at hundreds of deliveries a second, printing would
cost the sink more than answering.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import uvicorn
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


def create_app(secret: str | None) -> Callable[..., Any]:
    webhook = Webhook(secret) if secret else None
    arrivals: dict[str, list[float]] = {}
    rejected = 0

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal rejected
        if scope["type"] != "http":
            return
        arrived = time.time()  # before reading the body: arrival, not parsing
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        if scope["method"] == "GET":
            if path == "/health":
                return await _answer(send, 200, b'{"status":"ok"}')
            if path == "/_count":
                return await _answer(send, 200, json.dumps({"ids": len(arrivals)}).encode())
            if path == "/_arrivals":
                payload = {"arrivals": arrivals, "rejected": rejected}
                return await _answer(send, 200, json.dumps(payload).encode())
            return await _answer(send, 404, b"")
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if webhook is not None:
            try:
                webhook.verify(body, headers)
            except WebhookVerificationError:
                rejected += 1
                return await _answer(send, 401, b"")
        arrivals.setdefault(headers.get("webhook-id", "?"), []).append(arrived)
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


async def _hang(host: str, port: int) -> None:
    """Accept, read, never answer; /health alone is answered, so the harness can wait for it."""

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            head = await reader.readuntil(b"\r\n\r\n")
            if head.startswith(b"GET /health "):
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                await writer.drain()
                writer.close()
                return
            while await reader.read(65536):  # until the service gives up and closes
                pass
        writer.close()

    server = await asyncio.start_server(client, host, port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.webhook_sink", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", help="verify signatures with this whsec_... secret")
    parser.add_argument("--hang", action="store_true", help="a dead endpoint: never answer")
    args = parser.parse_args()
    if args.hang:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_hang(args.host, args.port))
        return
    uvicorn.run(
        create_app(args.secret),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


if __name__ == "__main__":
    main()
