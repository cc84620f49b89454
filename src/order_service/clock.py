"""The service's one clock.

Every piece of code that needs "now" for a business rule (a period's end, a
lease, a retry time, a scan) reads it here, through `now()` (or
`db.utcnow`, which is the same function). Tests move time with `advance()`
instead of sleeping for days; nothing else may change it.

Only wall-clock business time goes through here. Waits (asyncio.sleep) and
monotonic measurements (latency metrics, rate windows) stay on the event
loop's own clocks: moving business time must not make a process sleep.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_offset = timedelta(0)


def now() -> datetime:
    """The current time, timezone-aware UTC, plus any offset a test set."""
    return datetime.now(UTC) + _offset


def advance(delta: timedelta) -> None:
    """Move the clock forward (tests only): everything reading now() follows."""
    global _offset
    if delta < timedelta(0):
        raise ValueError("the clock only moves forward")
    _offset += delta


def reset() -> None:
    """Back to real time (tests only)."""
    global _offset
    _offset = timedelta(0)


def offset() -> timedelta:
    return _offset
