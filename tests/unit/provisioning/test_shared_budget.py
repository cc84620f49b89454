"""SharedRateBudget's own logic, without a database: slices, their expiry, closing
them, handing unused tokens back, pauses.

The ledger is replaced by :class:`Ledger`, a plain-Python model of the SQL in
``budget_sql.py`` (a grant counts against a window of length W while
``expires_at + W`` is ahead); the SQL itself is tested on PostgreSQL in
``tests/integration/test_shared_budget.py``. Time is a fake clock whose sleeps
advance it instantly.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any, cast

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from order_service.provisioning.budget_listener import PauseListener
from order_service.provisioning.shared_budget import GrantAnswer, SharedRateBudget, Slice
from tests.unit.provisioning.test_rate_budget import WALL_EPOCH, FakeTime

SPAN = 62.0  # a 60 s window plus the default 2 s skew


@dataclass
class Grant:
    owner: str
    granted_at: float
    expires_at: float
    count: int


class Ledger:
    """The shared windows (per minute only) as the SQL computes them."""

    def __init__(self, per_minute: int, ttl: float) -> None:
        self.per_minute = per_minute
        self.ttl = ttl
        self.grants: dict[int, Grant] = {}
        self.paused_until = float("-inf")
        self.transactions = 0
        self.closes: list[tuple[int, int, float]] = []

    def used(self, now: float) -> int:
        return sum(g.count for g in self.grants.values() if g.expires_at + SPAN > now)

    def close(self, grant_id: int, used: int, last_s: float) -> None:
        self.closes.append((grant_id, used, last_s))
        grant = self.grants[grant_id]
        grant.count = min(grant.count, used)
        grant.expires_at = min(grant.expires_at, grant.granted_at + last_s)

    def grant(
        self, owner: str, want: int, closes: list[tuple[int, int, float]], now: float
    ) -> GrantAnswer:
        self.transactions += 1
        for close in closes:
            self.close(*close)
        used = self.used(now)
        if self.paused_until > now:
            return GrantAnswer(None, 0, self.paused_until - now, used, used)
        n = max(0, min(want, self.per_minute - used))
        if n:
            grant_id = len(self.grants) + 1
            self.grants[grant_id] = Grant(owner, now, now + self.ttl, n)
            return GrantAnswer(grant_id, n, 0.0, used, used)
        cumulative = 0
        for grant in sorted(self.grants.values(), key=lambda g: g.expires_at):
            if grant.expires_at + SPAN <= now:
                continue
            cumulative += grant.count
            if cumulative >= used + 1 - self.per_minute:
                return GrantAnswer(None, 0, grant.expires_at + SPAN - now, used, used)
        raise AssertionError("a full window must free up")


class LedgerBudget(SharedRateBudget):
    """The budget with its three database calls going to the model instead."""

    def __init__(self, ledger: Ledger, fake: FakeTime, owner: str, **kwargs: Any) -> None:
        super().__init__(
            cast(AsyncEngine, None),
            owner,
            per_minute=ledger.per_minute,
            per_hour=100_000,
            slice_ttl_s=ledger.ttl,
            listen=False,
            clock=fake.clock,
            wall_clock=fake.wall,
            sleep=fake.sleep,
            **kwargs,
        )
        self.ledger = ledger
        self.fake = fake
        self.wants: list[int] = []
        self.published: list[float] = []

    async def _grant(
        self,
        want: int,
        closes: list[tuple[int, int, float]],
        *,
        requested_at: float,
        bulk: bool = False,
    ) -> GrantAnswer:
        self.wants.append(want)
        await asyncio.sleep(0)  # the round trip: other callers queue up meanwhile
        answer = self.ledger.grant(self._owner, want, closes, self.fake.now)
        if answer.wait_s > 0 and self.ledger.paused_until > self.fake.now:
            self._block_locally(answer.wait_s)
        return answer

    async def _close_slice(self, held: Slice) -> None:
        self.ledger.close(*held.close_args())

    async def _publish_pause(self, seconds: float) -> None:
        self.published.append(seconds)
        self.ledger.paused_until = max(self.ledger.paused_until, self.fake.now + seconds)


def make(ledger: Ledger, fake: FakeTime, owner: str = "p1", **kwargs: Any) -> LedgerBudget:
    return LedgerBudget(ledger, fake, owner, **kwargs)


async def test_concurrent_callers_share_slices_instead_of_a_transaction_each() -> None:
    fake, ledger = FakeTime(), Ledger(per_minute=100, ttl=2.0)
    budget = make(ledger, fake, slice_max=5)
    await asyncio.gather(*(budget.acquire() for _ in range(20)))
    # The first asks alone; while it waits for the database the rest queue up.
    assert budget.wants == [1, 5, 5, 5, 5]
    assert ledger.transactions == 5
    assert ledger.used(fake.now) == 21  # the last slice keeps 1 unused until closed


async def test_a_lone_caller_asks_for_what_it_used_lately() -> None:
    fake, ledger = FakeTime(), Ledger(per_minute=100, ttl=2.0)
    budget = make(ledger, fake, slice_max=5)
    await budget.acquire()
    assert budget.wants == [1]  # nothing waits, nothing used yet: one token
    fake.advance(0.1)
    for _ in range(3):
        await budget.acquire()  # three more, one after another
    assert budget.wants == [1, 1, 2]  # each sized by what the last 2 s used
    fake.advance(5.0)  # a quiet spell: back to one
    await budget.acquire()
    assert budget.wants[-1] == 1


async def test_the_default_slice_is_a_twentieth_of_the_minute_at_most_ten() -> None:
    fake = FakeTime()
    assert make(Ledger(225, 2.0), fake).slice_max == 10
    assert make(Ledger(60, 2.0), fake).slice_max == 3
    assert make(Ledger(10, 2.0), fake).slice_max == 1


async def test_a_slice_is_not_used_after_its_time_and_is_closed_with_the_next_grant() -> None:
    fake, ledger = FakeTime(), Ledger(per_minute=100, ttl=2.0)
    budget = make(ledger, fake, slice_max=5)
    await budget.acquire()  # slice 1: one token, sent at t=0
    fake.advance(0.5)
    await budget.acquire()  # slice 2 (one token); slice 1 is closed with it:
    assert ledger.closes == [(1, 1, 0.0)]  # count 1, expiry moved back to its send
    assert ledger.grants[1].expires_at == 0.0
    fake.advance(0.1)
    await budget.acquire()  # two sent lately: a slice of 2, one used
    assert budget.wants == [1, 1, 2]
    fake.advance(2.5)  # past the slice's time: its other token must not be sent
    await budget.acquire()
    assert len(ledger.grants) == 4
    assert ledger.closes[-1] == (3, 1, 0.0)
    assert ledger.used(fake.now) == 4


async def test_unused_tokens_go_back_when_the_slice_times_out() -> None:
    fake, ledger = FakeTime(), Ledger(per_minute=10, ttl=0.05)
    budget = make(ledger, fake, slice_max=10)
    await asyncio.gather(*(budget.acquire() for _ in range(5)))
    fake.advance(0.01)
    await budget.acquire()  # asks for 5 (used 5 lately), sends 1
    assert ledger.used(fake.now) == 10
    await asyncio.sleep(0.15)  # the slice's timer (real time) fires
    assert ledger.closes[-1] == (len(ledger.grants), 1, pytest.approx(0.0))
    assert ledger.used(fake.now) == 6
    # Someone else gets the 4 at once, not after the window.
    other = make(ledger, fake, owner="p2", slice_max=10)
    await asyncio.gather(*(other.acquire() for _ in range(4)))
    assert fake.sleeps == []


async def test_a_dead_process_slice_blocks_only_until_it_leaves_the_window() -> None:
    fake, ledger = FakeTime(), Ledger(per_minute=10, ttl=2.0)
    dead = make(ledger, fake, "dead", slice_max=10)
    await dead.acquire()  # a slice, sent from at t=0...
    dead._slice = None  # ...and the process is gone: nothing closes it
    ledger.grants[1].count = 10  # say it was a slice of the whole window
    alive = make(ledger, fake, "alive", slice_max=10)
    await alive.acquire()
    # It may have sent up to its expiry (2 s); counted as sent for the window after.
    assert sum(fake.sleeps) == pytest.approx(2.0 + SPAN, abs=0.02)


async def test_a_window_filled_by_others_is_polled_every_two_seconds() -> None:
    fake, ledger = FakeTime(), Ledger(per_minute=4, ttl=1.0)
    other = make(ledger, fake, "other", slice_max=4)
    for _ in range(4):
        await other.acquire()  # the window is full, the last slice (t=0..1) open
    fake.advance(10.0)
    budget = make(ledger, fake, slice_max=4)
    await budget.acquire()
    # The first slice, closed at its send (t=0), frees one token at 62 s.
    assert fake.now == pytest.approx(SPAN, abs=0.02)
    assert max(fake.sleeps) <= 2.0  # tokens handed back meanwhile would be noticed
    assert ledger.transactions >= 3 + 26  # ...at the price of one grant query per 2 s


async def test_pause_for_applies_here_at_once_and_is_published() -> None:
    fake, ledger = FakeTime(), Ledger(per_minute=100, ttl=2.0)
    budget = make(ledger, fake)
    await budget.acquire()
    budget.pause_for(7.0)
    assert budget.blocked_for_s == pytest.approx(7.0)
    await asyncio.sleep(0)  # the background write runs
    assert budget.published == [pytest.approx(7.0)]
    await budget.acquire()  # local pause first, even with tokens in hand
    assert fake.now == pytest.approx(7.0)


async def test_low_remaining_header_pauses_and_publishes() -> None:
    fake, ledger = FakeTime(), Ledger(per_minute=100, ttl=2.0)
    budget = make(ledger, fake)
    budget.observe({"ratelimit-remaining": "1", "ratelimit-reset": str(WALL_EPOCH + 30)})
    await asyncio.sleep(0)
    assert budget.published == [pytest.approx(30.0)]


async def test_a_pause_heard_from_another_process_is_not_published_again() -> None:
    fake, ledger = FakeTime(), Ledger(per_minute=100, ttl=2.0)
    budget = make(ledger, fake)
    listener = PauseListener(engine=None)  # type: ignore[arg-type]
    listener.add(budget)
    listener._on_notify(None, 1, "channel", f"{budget.account_id} 4.5")
    listener._on_notify(None, 1, "channel", "garbage")  # ignored
    listener._on_notify(None, 1, "channel", f"{uuid.uuid4()} 99")  # another account's pause
    await asyncio.sleep(0)
    assert budget.blocked_for_s == pytest.approx(4.5)
    assert budget.published == []


async def test_a_pause_in_the_ledger_holds_a_process_that_missed_the_notification() -> None:
    fake, ledger = FakeTime(), Ledger(per_minute=100, ttl=2.0)
    first, deaf = make(ledger, fake, "a"), make(ledger, fake, "b")
    first.pause_for(5.0)
    await asyncio.sleep(0)
    await deaf.acquire()
    assert fake.now == pytest.approx(5.0)


def test_pause_for_outside_an_event_loop_still_pauses_locally() -> None:
    fake, ledger = FakeTime(), Ledger(per_minute=100, ttl=2.0)
    budget = make(ledger, fake)
    budget.pause_for(3.0)
    assert budget.blocked_for_s == pytest.approx(3.0)


def test_bad_slice_time_is_refused() -> None:
    with pytest.raises(ValueError):
        make(Ledger(100, 0.0), FakeTime())


async def test_repeated_pauses_are_written_only_when_they_reach_further() -> None:
    fake, ledger = FakeTime(), Ledger(per_minute=100, ttl=2.0)
    budget = make(ledger, fake)
    for _ in range(5):  # a burst of 429s, each with Retry-After: 10
        budget.pause_for(10.0)
    budget.observe({"ratelimit-remaining": "0", "ratelimit-reset": str(WALL_EPOCH + 10)})
    fake.advance(1.0)
    budget.pause_for(10.0)  # ends a second later: worth telling the others
    await asyncio.sleep(0)
    assert budget.published == [pytest.approx(10.0), pytest.approx(10.0)]
