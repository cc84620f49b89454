"""One DigitalOcean rate budget per account for every process on one PostgreSQL database.

DigitalOcean counts requests per token, so N replicas (or ``--workers N``) that
each kept their own :class:`RateBudget` would together send N times the budget.
:class:`SharedRateBudget` keeps the same interface but draws from a ledger in
PostgreSQL that all processes share. v1.2: each DO account (SPEC section 13)
has a budget of its own (its row of ``do_budget``, its grants), so three
accounts create three times as many droplets a minute and a 429 on one pauses
that account only.

Design (the README's "Within DO's limits" has the operator's view):

* **Slices.** A process does not ask the database for every request. Under the
  ``do_budget`` row lock it takes a *slice* of up to ``slice_max`` tokens
  (default ``per_minute // 20``, 1 to 10; sized
  by its own demand: how many callers wait now and how many tokens it used in
  the last ``slice_ttl_s``) and records it as one ``do_budget_grants`` row. The
  tokens must be sent within ``slice_ttl_s`` (measured locally from before the
  request, so always inside the row's ``expires_at``); leftovers are returned.
* **Counting.** A grant counts against a window of length W (60 s or 3600 s,
  plus the skew) while ``expires_at + W`` lies ahead of the database clock: any
  send of the grant was at or before ``expires_at``, so a new grant is admitted
  only if every grant that could share a W-long window with it, plus itself,
  stays within the limit. Only the database clock is used for this, so
  processes with skewed clocks agree.
* **Closing a slice** lowers ``count`` to the tokens really sent and
  ``expires_at`` to the last send: this hands unused tokens back and lets the
  used ones leave the window as early as possible. It rides along with the
  process's next grant (same transaction) or, when a slice runs out of time
  with tokens left, is one small UPDATE of its own. A process that dies cannot
  close its slice; its tokens then count as sent (they may have been), until
  ``expires_at + W`` - they block nobody beyond that.
* **Pauses.** A 429/``Retry-After`` or an exhausted ``ratelimit-remaining``
  seen by any process is applied locally at once, written to
  ``do_budget.paused_until`` (no grant is made before it) and announced with
  ``NOTIFY``, so the other processes stop sending their slices' leftovers too.
  ``observe`` and ``pause_for`` stay synchronous: the write is a background
  task.

Cost: one transaction (BEGIN, lock + close, grant, COMMIT: four round trips)
per slice. Measured with three processes at the default 225/min: 0.13-0.17
transactions and 0.55-0.7 round trips per DO request. While the window is
full, each waiting process asks again at most every 2 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from order_service.accounts.models import DEFAULT_ACCOUNT_ID
from order_service.provisioning.budget_listener import PauseListener
from order_service.provisioning.budget_sql import (
    CLOSE_SQL,
    CREATE_ROW_SQL,
    GRANT_SQL,
    LOCK_SQL,
    NOTIFY_CHANNEL,
    PAUSE_SQL,
)
from order_service.provisioning.rate_budget import RateBudget

__all__ = ["SharedRateBudget"]

logger = logging.getLogger("order_service.provisioning.budget")

# A slice older than this is no longer closed by a later grant: it either was
# closed when it ran out of time, or was fully used (closing only tightens it).
# Keeping closes recent also keeps them clear of the purge below, so a close
# and a purge never wait on each other's row locks.
_CLOSE_MAX_AGE_S = 30.0
# Grants are deleted this long after they left the longest window.
_PURGE_MARGIN_S = 300.0
# Longest single sleep while waiting for the shared budget: tokens handed back
# by other processes are noticed within this time.
_MAX_POLL_S = 2.0


@dataclass
class Slice:
    """Tokens of one grant held by this process."""

    grant_id: int
    count: int
    requested_at: float  # local clock, taken before the grant was asked for
    deadline: float  # local clock: no token of this slice is sent after it
    bulk: bool = False  # for bulk requests (creates, actions, deletes) or follow-ups
    used: int = 0
    last_use: float = 0.0
    closed: bool = False

    @property
    def left(self) -> int:
        return self.count - self.used

    def close_args(self) -> tuple[int, int, float]:
        """(grant id, tokens sent, seconds from the request to the last send).

        Measured from *before* the request, so it is at least the true time
        from ``granted_at`` to the last send: the closed row never understates.
        """
        last_s = max(0.0, self.last_use - self.requested_at) if self.used else 0.0
        return self.grant_id, self.used, last_s


@dataclass
class GrantAnswer:
    grant_id: int | None
    count: int
    wait_s: float
    minute_used: int
    hour_used: int


class SharedRateBudget(RateBudget):
    """A :class:`RateBudget` whose windows are shared through PostgreSQL.

    The inherited in-memory windows still record this process's own sends (for
    ``in_window_minute``/``in_window_hour``) and its local pause; the database
    decides how many sends all processes together may make.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        owner: str,
        per_minute: int = 225,
        per_hour: int = 4750,
        *,
        skew_s: float = 2.0,
        minute_s: float = 60.0,
        hour_s: float = 3600.0,
        slice_max: int | None = None,
        slice_ttl_s: float = 2.0,
        listen: bool = True,
        account_id: uuid.UUID = DEFAULT_ACCOUNT_ID,
        listener: PauseListener | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(
            per_minute,
            per_hour,
            skew_s=skew_s,
            minute_s=minute_s,
            hour_s=hour_s,
            clock=clock,
            wall_clock=wall_clock,
            sleep=sleep,
        )
        if slice_ttl_s <= 0:
            raise ValueError("slice_ttl_s must be positive")
        self._engine = engine
        self.account_id = account_id
        self._owner = owner[:128]
        self._per_minute = per_minute
        self._per_hour = per_hour
        self._minute_span = minute_s + skew_s
        self._hour_span = hour_s + skew_s
        self.slice_max = slice_max if slice_max is not None else max(1, min(10, per_minute // 20))
        self.slice_ttl_s = slice_ttl_s
        self._listen = listen
        # Shared by the budgets of one process (one connection for every account),
        # or this budget's own when none is given.
        self._shared_listener = listener
        self._slices: dict[bool, Slice | None] = {}
        self._to_close: list[Slice] = []
        self._background: set[asyncio.Task[None]] = set()
        self._listener: asyncio.Task[None] | None = None
        self._closing = False
        self._published_until = -math.inf  # local clock: the last pause written
        #: What the last grant saw in the shared windows (metrics, tests).
        self.shared_minute_used = 0
        self.shared_hour_used = 0
        #: Transactions this budget ran against the ledger (grants, closes, pauses).
        self.transactions = 0

    def __repr__(self) -> str:
        return (
            f"SharedRateBudget(owner={self._owner!r}, per_minute={self._per_minute}, "
            f"per_hour={self._per_hour}, slice_max={self.slice_max})"
        )

    # ------------------------------------------------------------ interface

    async def acquire(self, *, bulk: bool = False) -> None:
        """Wait until a request may be sent by this process and all others.

        Bulk requests and follow-ups hold slices of their own kind (a create never
        queues a follow-up behind it); the ledger keeps the follow-ups' reserve."""
        self._start_listener()
        self._waiting[bulk] += 1
        try:
            async with self._lock_of(bulk):
                while True:
                    now = self._clock()
                    if (wait_s := self._wait_s(now, bulk)) > 0:  # local pause, own windows
                        await self._sleep(wait_s)
                        continue
                    held = self._slices.get(bulk)
                    if held is not None and held.left > 0 and now < held.deadline:
                        held.used += 1
                        held.last_use = now
                        self._record(now, bulk)
                        return
                    if (wait_s := await self._take_slice(bulk)) > 0:
                        await self._sleep(min(wait_s, _MAX_POLL_S))
        finally:
            self._waiting[bulk] -= 1

    async def aclose(self) -> None:
        """Stop listening and hand back what this process still holds."""
        self._closing = True
        if self._shared_listener is not None:
            self._shared_listener.remove(self)
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        for held in list(self._slices.values()):
            if held is not None and not held.closed and held.left > 0:
                held.closed = True
                with contextlib.suppress(Exception):
                    await self._close_slice(held)
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    # ------------------------------------------------------------ pauses

    def _block_until(self, deadline: float) -> None:
        """A pause from ``pause_for``/``observe``: apply here, share with the rest."""
        super()._block_until(deadline)
        seconds = deadline - self._clock()
        # Every answer carries the headers, and a burst of 429s each calls
        # pause_for: write only pauses that end noticeably later than the last.
        if seconds > 0 and not self._closing and deadline > self._published_until + 0.25:
            self._published_until = deadline
            self._spawn(self._publish_pause(seconds))

    def _block_locally(self, seconds: float) -> None:
        if math.isfinite(seconds) and seconds > 0:
            super()._block_until(self._clock() + seconds)

    async def _publish_pause(self, seconds: float) -> None:
        async with self._engine.begin() as connection:
            self.transactions += 1
            await connection.execute(
                PAUSE_SQL,
                {
                    "seconds": seconds,
                    "channel": NOTIFY_CHANNEL,
                    "account": self.account_id,
                    "account_text": str(self.account_id),
                },
            )

    # ------------------------------------------------------------ slices

    def _want(self, bulk: bool) -> int:
        """Tokens to ask for: what waits now, or what the last slice-time used."""
        now = self._clock()
        sends = self._bulk_minute.sends if bulk else self._minute.sends
        recent = sum(
            1
            for _ in itertools.takewhile(
                lambda sent: sent > now - self.slice_ttl_s, reversed(sends)
            )
        )
        return max(1, min(self.slice_max, max(self._waiting[bulk], recent)))

    async def _take_slice(self, bulk: bool = False) -> float:
        """Ask the ledger for a slice; returns seconds to wait when none was given."""
        previous = self._slices.get(bulk)
        # Its close goes out with this grant: not one more token from it, even
        # if the transaction fails after committing the close.
        self._slices[bulk] = None
        if previous is not None and not previous.closed:
            previous.closed = True
            self._to_close.append(previous)
        now = self._clock()
        closes = [s for s in self._to_close if now - s.requested_at < _CLOSE_MAX_AGE_S]
        self._to_close = []
        want = self._want(bulk)
        answer = await self._grant(
            want, [s.close_args() for s in closes], requested_at=now, bulk=bulk
        )
        self.shared_minute_used = answer.minute_used
        self.shared_hour_used = answer.hour_used
        if answer.count > 0 and answer.grant_id is not None:
            granted = Slice(answer.grant_id, answer.count, now, now + self.slice_ttl_s, bulk)
            self._slices[bulk] = granted
            asyncio.get_running_loop().call_later(self.slice_ttl_s, self._on_slice_timeout, granted)
            return 0.0
        return max(answer.wait_s, 0.01)

    async def _grant(
        self,
        want: int,
        closes: list[tuple[int, int, float]],
        *,
        requested_at: float,
        bulk: bool = False,
    ) -> GrantAnswer:
        """One transaction: close finished slices, lock, take up to ``want`` tokens."""
        ids, used, last_s = [list(column) for column in zip(*closes, strict=True)] or [[], [], []]
        async with self._engine.begin() as connection:
            self.transactions += 1
            account = self.account_id
            locked = await connection.execute(
                LOCK_SQL, {"ids": ids, "used": used, "last_s": last_s, "account": account}
            )
            if locked.first() is None:  # first use of this account's budget
                await connection.execute(CREATE_ROW_SQL, {"account": account})
                await connection.execute(
                    LOCK_SQL, {"ids": [], "used": [], "last_s": [], "account": account}
                )
            row = (
                await connection.execute(
                    GRANT_SQL,
                    {
                        "account": account,
                        "owner": self._owner,
                        "want": want,
                        "bulk": bulk,
                        "per_minute": self._per_minute,
                        "per_hour": self._per_hour,
                        "bulk_per_minute": self._per_minute - self.minute_reserve,
                        "bulk_per_hour": self._per_hour - self.hour_reserve,
                        "minute_span": self._minute_span,
                        "hour_span": self._hour_span,
                        "ttl": self.slice_ttl_s,
                        "purge_after": self._hour_span + _PURGE_MARGIN_S,
                    },
                )
            ).one()
        paused_s = float(row.paused_s or 0)
        if paused_s > 0:
            # Another process's pause we may not have heard of (missed NOTIFY).
            self._block_locally(paused_s)
        wait_s = max(paused_s, float(row.minute_wait_s or 0), float(row.hour_wait_s or 0))
        return GrantAnswer(
            grant_id=row.grant_id,
            count=int(row.n),
            wait_s=wait_s,
            minute_used=int(row.minute_used),
            hour_used=int(row.hour_used),
        )

    def _on_slice_timeout(self, held: Slice) -> None:
        """The slice ran out of time: hand back its unused tokens at once."""
        if held.closed or held.left <= 0 or self._closing:
            return  # fully used ones are closed with the next grant
        held.closed = True
        if self._slices.get(held.bulk) is held:
            self._slices[held.bulk] = None
        self._spawn(self._close_slice(held))

    async def _close_slice(self, held: Slice) -> None:
        grant_id, used, last_s = held.close_args()
        async with self._engine.begin() as connection:
            self.transactions += 1
            await connection.execute(CLOSE_SQL, {"id": grant_id, "used": used, "last_s": last_s})

    # ------------------------------------------------------------ background

    def _spawn(self, work: Awaitable[None]) -> None:
        """Run a ledger write in the background, keeping a reference; log failures."""

        async def run() -> None:
            try:
                await work
            except Exception:
                logger.exception("DigitalOcean budget: background write failed")

        try:
            task = asyncio.get_running_loop().create_task(run())
        except RuntimeError:  # no running loop (a sync caller outside asyncio)
            if asyncio.iscoroutine(work):
                work.close()
            return
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _start_listener(self) -> None:
        if not self._listen or self._closing:
            return
        if self._shared_listener is not None:
            self._shared_listener.add(self)
        elif self._listener is None:
            own = PauseListener(self._engine)
            own.add(self)
            self._listener = asyncio.get_running_loop().create_task(
                own.run(), name="do-budget-listener"
            )

    def heard_pause(self, seconds: float) -> None:
        """Another process paused this account (its NOTIFY)."""
        self._block_locally(seconds)
