"""PAYMENT_CONCURRENCY: payment requests at work at once, admitted at the ASGI door.

A payment storm (hundreds of payments sent together) used to be routed, have
its bodies parsed and validated and its dependencies solved, all of them in a
loop turn or two, before each waited for a transaction slot: ~0.4 ms each, which
a GET arriving then waited out (bench/analysis.md, storm). Here a waiting
payment has cost a path match and the buffering of its body; the FastAPI work,
the auth check and the transaction run `PAYMENT_CONCURRENCY` at a time.

The body is read before the turn is taken, so a client sending its body slowly
holds no turn; the body limit still applies (the request middleware outside
this one turns it into 413). Nothing is skipped: the admitted request goes
through the whole app, auth and validation included.

With YIELD_TO_READS the door also counts the GET (and HEAD) requests
in flight, and an admitted payment runs with `reads_first.yielding_to` set, so
its statements wait for those reads (reads_first.py; the background duties'
sessions yield to the same count).
"""

from __future__ import annotations

import asyncio

from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from order_service.reads_first import ReadsFirst, yielding_to

READ_METHODS = frozenset({"GET", "HEAD"})


class PaymentAdmission:
    """POSTs to `path` (a route template) wait for one of `concurrency` turns; with
    `reads`, reads are counted and the admitted payments' statements yield to them."""

    def __init__(
        self, app: ASGIApp, *, path: str, concurrency: int, reads: ReadsFirst | None = None
    ) -> None:
        self.app = app
        # Matched the way the router matches it.
        self.path = compile_path(path)[0]
        self.concurrency = concurrency
        self.reads = reads
        self._slots: asyncio.Semaphore | None = None

    @property
    def slots(self) -> asyncio.Semaphore:
        # Made on first use, on the loop serving requests.
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        return self._slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] in READ_METHODS and self.reads is not None:
            with self.reads.reading():
                await self.app(scope, receive, send)
            return
        if scope["method"] != "POST" or not self.path.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        buffered = await _read_body(receive)
        async with self.slots:
            token = yielding_to.set(self.reads)
            try:
                await self.app(scope, _replay(buffered, receive), send)
            finally:
                yielding_to.reset(token)


async def _read_body(receive: Receive) -> list[Message]:
    """The request's messages up to its last body part (or the client's disconnect)."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
