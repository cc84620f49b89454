"""Client-side rate budget for the DigitalOcean API.

DigitalOcean limits every token to 5,000 requests in any rolling hour and 250 in
any rolling minute; past that it answers 429 and every provisioning task stalls.
Rather than discovering the limit by hitting it, the process keeps one
:class:`RateBudget` shared by every DigitalOcean call and stays below the limits
with some headroom. DigitalOcean's own ``ratelimit-*`` headers and 429 answers
feed back into the same budget, so another process using the same token, or a
limit we misjudged, slows *every* caller down instead of just the unlucky one.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping

__all__ = ["RateBudget"]

_MINUTE_S = 60.0
_HOUR_S = 3600.0


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Look a header up case-insensitively, whatever kind of mapping we were given.

    httpx.Headers is case-insensitive already; a plain dict (tests, other
    callers) is not, so fall back to a scan.
    """
    value = headers.get(name)
    if value is not None:
        return value
    for key, candidate in headers.items():
        if key.lower() == name:
            return candidate
    return None


def _parse_number(raw: str | None) -> float | None:
    """Parse a numeric header; garbage and non-finite values count as absent."""
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class _Window:
    """Send times that still count against one rolling limit.

    A send made at ``t`` occupies a slot until ``t + span`` where ``span`` is the
    window length plus the skew: our request reaches DigitalOcean a little after
    we record it, so DigitalOcean frees the slot a little later than we would.
    """

    __slots__ = ("limit", "sends", "span")

    def __init__(self, limit: int, span: float) -> None:
        self.limit = limit
        self.span = span
        self.sends: deque[float] = deque()

    def prune(self, now: float) -> None:
        """Forget sends whose slot has expired (they are recorded in time order)."""
        while self.sends and self.sends[0] + self.span <= now:
            self.sends.popleft()

    def wait_s(self, now: float) -> float:
        """Seconds until one more send fits in this window (0 when it fits now)."""
        self.prune(now)
        excess = len(self.sends) - self.limit
        if excess < 0:
            return 0.0
        # The send that must expire so that we are one below the limit.
        return self.sends[excess] + self.span - now

    def count(self, now: float) -> int:
        """How many sends currently occupy this window."""
        self.prune(now)
        return len(self.sends)


class RateBudget:
    """One per process, shared by every DO call: a client-side sliding window
    that keeps us below DO's limits with headroom. Used as is on SQLite (one
    process); on PostgreSQL :class:`~order_service.provisioning.shared_budget.SharedRateBudget`
    extends it to one budget for every process on the database.

    Two kinds of request share it (issue 23): *bulk* ones (creates, droplet
    actions, deletes: work that can come by the hundred) may use at most
    ``limit - reserve`` of each window, so ``reserve`` (``limit // 20``, 11 of
    225 a minute) is always left for the others - the follow-ups (listings, GETs,
    look-ups) that see a booted droplet within seconds instead of at the next
    minute, when a storm's creates would otherwise take every token.

    Concurrency: :meth:`acquire` takes an :class:`asyncio.Lock` per kind
    (FIFO-fair) and sleeps *while holding it*. Within a kind the limits are the
    same for everyone, so when the first waiter cannot send, nobody behind it can
    either; sleeping inside the lock costs nothing and makes waiters go strictly
    in arrival order, without any busy-spinning. A waiting create never holds up
    a follow-up. After each sleep the waiter re-checks everything, so a
    :meth:`pause_for` or :meth:`observe` that arrives meanwhile is honoured.
    """

    #: The share of each window kept from bulk requests for the follow-ups.
    FOLLOW_UP_SHARE_DIVISOR = 20

    #: When DigitalOcean reports this few requests left (another process may be
    #: spending the same token), stop sending until its reset time.
    LOW_REMAINING_RESERVE = 2
    #: Upper bound for a block derived from ``ratelimit-reset`` so a bogus or
    #: far-future header cannot freeze the process for longer than the hourly window.
    MAX_HEADER_BLOCK_S = _HOUR_S

    def __init__(
        self,
        per_minute: int = 225,
        per_hour: int = 4750,
        *,
        skew_s: float = 2.0,
        minute_s: float = _MINUTE_S,
        hour_s: float = _HOUR_S,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if per_minute < 1 or per_hour < 1:
            raise ValueError("per_minute and per_hour must be at least 1")
        if skew_s < 0:
            raise ValueError("skew_s must not be negative")
        if minute_s <= 0 or hour_s <= 0:
            raise ValueError("window lengths must be positive")
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        # The window lengths are DO's (60 s, 3600 s); tests shorten them.
        self._minute = _Window(per_minute, minute_s + skew_s)
        self._hour = _Window(per_hour, hour_s + skew_s)
        # The bulk requests' own sends, limited to what the follow-ups' reserve leaves.
        self.minute_reserve = per_minute // self.FOLLOW_UP_SHARE_DIVISOR
        self.hour_reserve = per_hour // self.FOLLOW_UP_SHARE_DIVISOR
        self._bulk_minute = _Window(per_minute - self.minute_reserve, minute_s + skew_s)
        self._bulk_hour = _Window(per_hour - self.hour_reserve, hour_s + skew_s)
        # Monotonic time before which nobody may send (429s, exhausted headers).
        self._blocked_until = -math.inf
        # One per kind (bulk or not), created lazily so the budget can be built
        # outside a running event loop.
        self._locks: dict[bool, asyncio.Lock] = {}
        # Requests of each kind waiting in acquire() (see `bulk_waiting`).
        self._waiting: dict[bool, int] = {False: 0, True: 0}

    def __repr__(self) -> str:
        return (
            f"RateBudget(per_minute={self._minute.limit}, per_hour={self._hour.limit}, "
            f"in_window_minute={self.in_window_minute})"
        )

    async def acquire(self, *, bulk: bool = False) -> None:
        """Wait until a request may be sent, then record it as sent now.

        `bulk` (a create, an action, a delete) may not use the follow-ups' reserve."""
        self._waiting[bulk] += 1
        try:
            async with self._lock_of(bulk):
                while (wait_s := self._wait_s(self._clock(), bulk)) > 0:
                    await self._sleep(wait_s)
                self._record(self._clock(), bulk)
        finally:
            self._waiting[bulk] -= 1

    @property
    def bulk_waiting(self) -> bool:
        """Bulk requests (a storm's creates) wait in this process for the budget: the
        minute's slots go to them as fast as they free, so the follow-ups have only
        their reserve, and a follow-up spent now is missing later in the minute
        (the watcher paces its rounds by it)."""
        return self._waiting[True] > 0

    def _lock_of(self, bulk: bool) -> asyncio.Lock:
        lock = self._locks.get(bulk)
        if lock is None:
            lock = self._locks[bulk] = asyncio.Lock()
        return lock

    def _record(self, now: float, bulk: bool) -> None:
        self._minute.sends.append(now)
        self._hour.sends.append(now)
        if bulk:
            self._bulk_minute.sends.append(now)
            self._bulk_hour.sends.append(now)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Take DigitalOcean's view of our budget into account.

        If ``ratelimit-remaining`` is at or below the reserve - typically because
        another process shares the token - block new sends until
        ``ratelimit-reset`` (epoch seconds, wall clock). Headers that are missing
        or unparseable are ignored: they must never break a request.
        """
        remaining = _parse_number(_header(headers, "ratelimit-remaining"))
        reset_epoch = _parse_number(_header(headers, "ratelimit-reset"))
        if remaining is None or reset_epoch is None:
            return
        if remaining > self.LOW_REMAINING_RESERVE:
            return
        wait_s = min(reset_epoch - self._wall_clock(), self.MAX_HEADER_BLOCK_S)
        if wait_s > 0:
            self._block_until(self._clock() + wait_s)

    def pause_for(self, seconds: float) -> None:
        """After a 429: nobody in this process sends for ``seconds``.

        Pauses only ever extend the current block, never shorten it.
        """
        if math.isfinite(seconds) and seconds > 0:
            self._block_until(self._clock() + seconds)

    async def aclose(self) -> None:
        """Nothing to release for a budget in memory (the shared one has)."""

    @property
    def in_window_minute(self) -> int:
        """Sends still counted against the per-minute limit (metrics, tests)."""
        return self._minute.count(self._clock())

    @property
    def in_window_hour(self) -> int:
        """Sends still counted against the per-hour limit (metrics, tests)."""
        return self._hour.count(self._clock())

    @property
    def blocked_for_s(self) -> float:
        """Seconds left of the current pause/header block (0 when not blocked)."""
        return max(0.0, self._blocked_until - self._clock())

    def _block_until(self, deadline: float) -> None:
        self._blocked_until = max(self._blocked_until, deadline)

    def _wait_s(self, now: float, bulk: bool = False) -> float:
        """Seconds until a send is allowed by the block and the windows of its kind."""
        wait = max(
            self._blocked_until - now,
            self._minute.wait_s(now),
            self._hour.wait_s(now),
        )
        if bulk:
            wait = max(wait, self._bulk_minute.wait_s(now), self._bulk_hour.wait_s(now))
        return wait
