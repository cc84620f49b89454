"""In-process wake-ups after commit: new work is looked at now, not next tick.

A runner registers a callback for its kind of work; code that commits new
work calls `wake_after_commit(session, kind)`. The database stays the
source of truth: a wake-up only shortens the wait of this process's own
runner (other processes find the work on their next scan), and a wake-up
that finds nothing costs one cheap scan.

A runner may live on another event loop than the code that commits (the
background duties run on a loop of their own, background_thread.py): each
callback is called on the loop it was registered from.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from order_service.db import on_commit

PROVISIONING = "provisioning"
ACTIONS = "actions"
EVENTS = "events"
DELIVERIES = "deliveries"

_Waker = tuple[asyncio.AbstractEventLoop | None, Callable[[], None]]
_wakers: dict[str, list[_Waker]] = defaultdict(list)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def register(kind: str, callback: Callable[[], None]) -> None:
    _wakers[kind].append((_running_loop(), callback))


def unregister(kind: str, callback: Callable[[], None]) -> None:
    _wakers[kind] = [waker for waker in _wakers[kind] if waker[1] != callback]


def call_on(loop: asyncio.AbstractEventLoop | None, callback: Callable[[], None]) -> None:
    """Call `callback` now if `loop` is this thread's (or None), else soon on `loop`."""
    if loop is None or loop is _running_loop():
        callback()
        return
    # A loop that has ended raises: its runner is gone, and a scan finds the work.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback)


def wake(kind: str) -> None:
    for loop, callback in list(_wakers[kind]):
        call_on(loop, callback)


async def sleep_until_woken(event: asyncio.Event, timeout_s: float) -> None:
    """Return when `event` is set or after `timeout_s`, whichever comes first.

    Every runner's idle wait goes through here, not through `asyncio.wait_for`:
    on Python 3.11, wait_for swallows a cancellation that arrives in the same
    loop turn as the event (a stop right after a wake-up), and the runner's
    loop then never ends (a CI run hung in stop() for 90 minutes). A plain
    await under `asyncio.timeout` keeps the cancellation.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            await event.wait()


def wake_after_commit(session: AsyncSession, kind: str) -> None:
    """Wake the runners of `kind` once the session's transaction commits (once per session)."""
    pending: set[str] = session.info.setdefault("wake_kinds", set())
    if kind in pending:
        return
    pending.add(kind)

    def after_commit() -> None:
        pending.discard(kind)
        wake(kind)

    on_commit(session, after_commit)
