"""The background duties on an event loop of their own, in a thread of the serving process.

Why: on the request loop a GET waits behind whatever the duties have ready at
that moment (a scan starting hundreds of workers, a droplet listing waking
hundreds of watchers, a burst of creates): one FIFO queue of callbacks. On a
loop of their own the duties share the interpreter with requests in GIL time
slices instead (made short: GIL_SWITCH_INTERVAL_S), so a request is served
within a slice of the duties' work, not after all of it (bench/analysis.md,
storm). The duties stay in the
process: its metrics, its shutdown, and a SIGKILL ends both halves at once.

Everything the duties use (their engine and pool, the DO client) is created,
used and closed on this loop: asyncpg connections belong to the loop that
opened them. The request loop reaches the duties only through wake-ups, which
`engine/wakeup.py` hands over thread-safely.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from order_service.background import Background
from order_service.engine import wakeup

logger = logging.getLogger("order_service")

STOP_JOIN_TIMEOUT_S = 30.0
# Measured in the 100-order storm (probe p99): 5 ms 38-43 ms, 0.5 ms 17-22 ms,
# 0.25 and 0.1 ms no better (bench/analysis.md).
GIL_SWITCH_INTERVAL_S = 0.0005


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop when installed (as `serve` runs the request loop), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


class BackgroundThread:
    """Runs `start()` (which returns the duties) on a new loop in a thread; `stop()`
    stops them on that loop and ends the thread."""

    def __init__(self, start: Callable[[], Awaitable[Background]]) -> None:
        self._start = start
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._background = Background()

    @property
    def duties(self) -> dict[str, Any]:
        return self._background.duties

    async def start(self) -> None:
        """Return once the duties run, or raise what starting them raised."""
        # The request loop waits for the GIL at most this long when the duties hold it
        # (CPython's default: 5 ms). Process-wide, hence set only when the thread runs.
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name="order-service-background", daemon=True
        )
        self._thread.start()
        await asyncio.wrap_future(started)

    def _run(self, started: concurrent.futures.Future[None]) -> None:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(self._main(started))

    async def _main(self, started: concurrent.futures.Future[None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        try:
            self._background = await self._start()
        except BaseException as error:  # handed to the request loop, which raises it
            started.set_exception(error)
            return
        started.set_result(None)
        try:
            await self._stopping.wait()
        finally:
            await self._background.stop()

    async def stop(self) -> None:
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None and thread.is_alive():
            wakeup.call_on(loop, stopping.set)
        await asyncio.to_thread(thread.join, STOP_JOIN_TIMEOUT_S)
        if thread.is_alive():
            logger.error("background duties did not stop within %.0f s", STOP_JOIN_TIMEOUT_S)
        self._thread = None
