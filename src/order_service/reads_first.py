"""Reads first: during a burst of writes, a write's statements wait for the GETs in flight.

Why: a GET takes a few turns of the event loop, and each turn waits behind
whatever else is ready then. In a payment storm that is the payments' work
(each statement's answer processed, the next one built and sent, in one turn)
and, in GIL slices, the background duties' work on their own loop. Here an
admitted payment and every duty wait before each statement while GETs are in
flight, so a GET runs with little ahead of it (bench/analysis.md, storm).

Bounded both ways. A write waits only for the GETs that were in flight when it
asked (they are numbered as they arrive), never for those that arrive later,
so a steady stream of reads cannot starve it; and never longer than
`MAX_WAIT_S`, so a client slow to take its answer (its GET stays in flight)
cannot hold writes back. Reads never wait for anything here.

The reads are counted on the request loop (`admission.py`); duties ask from
their own loop in another thread, hence the lock and the thread-safe wake-ups.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

# A GET takes a few milliseconds; a wait this long means a stalled one.
MAX_WAIT_S = 0.025
# The sessionmaker `info` key that makes every statement of its sessions yield.
INFO_KEY = "reads_first"

_Waiter = tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]


class ReadsFirst:
    """The reads in flight on the request loop, and the writes waiting for them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0
        # Insertion order is arrival order: the first key is the oldest read in flight.
        self._in_flight: dict[int, None] = {}
        self._waiting: list[_Waiter] = []

    @property
    def reads_in_flight(self) -> int:
        return len(self._in_flight)

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Count one read for as long as it is in flight (on the request loop)."""
        with self._lock:
            number = self._next
            self._next += 1
            self._in_flight[number] = None
        try:
            yield
        finally:
            with self._lock:
                del self._in_flight[number]
                if self._waiting:
                    self._release()

    async def turn(self) -> None:
        """Return once every read in flight now has ended, or after MAX_WAIT_S (from any
        loop; at once when no read is in flight)."""
        if not self._in_flight:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if not self._in_flight:
                return
            waiter = (self._next - 1, loop, future)
            self._waiting.append(waiter)
        try:
            async with asyncio.timeout(MAX_WAIT_S):
                await future
        except TimeoutError:
            pass
        finally:
            # Timed out or cancelled (the future is cancelled with the task then): no
            # wake-up for it any more. Woken: _release already took it out.
            with self._lock, contextlib.suppress(ValueError):
                self._waiting.remove(waiter)

    def _release(self) -> None:
        """Wake the waiters whose reads have all ended (called holding the lock)."""
        oldest = next(iter(self._in_flight), None)
        still: list[_Waiter] = []
        for waiter in self._waiting:
            newest_seen, loop, future = waiter
            if oldest is not None and oldest <= newest_seen:
                still.append(waiter)
                continue
            # A waiter's loop may be closing (its duties stopping): a GET never
            # fails for it.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_finish, future)
        self._waiting = still


def _finish(future: asyncio.Future[None]) -> None:
    if not future.done():  # a waiter that timed out or was cancelled
        future.set_result(None)


# Set by the door for an admitted payment: its statements yield to reads.
yielding_to: ContextVar[ReadsFirst | None] = ContextVar("yielding_to", default=None)


class YieldingSession(AsyncSession):
    """A session whose statements first wait for their turn: an admitted payment's
    (`yielding_to` set) and every background duty's (`INFO_KEY` in its info)."""

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        gate = yielding_to.get() or self.info.get(INFO_KEY)
        if gate is not None:
            await gate.turn()
        return await super().execute(*args, **kwargs)
