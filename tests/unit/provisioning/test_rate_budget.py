"""RateBudget: the process-wide sliding window in front of every DigitalOcean call.

All tests run on a fake clock whose ``sleep`` advances time instantly, so the
minute and hour windows can be exercised in milliseconds.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from order_service.provisioning.rate_budget import RateBudget

WALL_EPOCH = 1_700_000_000.0


class FakeTime:
    """Monotonic + wall clock that only move when someone sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return WALL_EPOCH + self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)  # let other coroutines run, as a real sleep would


def make_budget(fake: FakeTime, **kwargs: Any) -> RateBudget:
    return RateBudget(clock=fake.clock, wall_clock=fake.wall, sleep=fake.sleep, **kwargs)


async def test_first_requests_go_out_without_waiting() -> None:
    fake = FakeTime()
    budget = make_budget(fake, per_minute=5, per_hour=100)

    for _ in range(5):
        await budget.acquire()

    assert fake.sleeps == []
    assert budget.in_window_minute == 5


async def test_concurrent_acquires_never_exceed_the_minute_window_plus_skew() -> None:
    fake = FakeTime()
    per_minute, skew = 10, 2.0
    budget = make_budget(fake, per_minute=per_minute, per_hour=10_000, skew_s=skew)
    sent: list[tuple[int, float]] = []

    async def worker(index: int) -> None:
        await budget.acquire()
        sent.append((index, fake.now))

    await asyncio.gather(*(worker(i) for i in range(35)))

    times = sorted(t for _, t in sent)
    span = 60.0 + skew
    for start in times:
        in_window = [t for t in times if start <= t < start + span]
        assert len(in_window) <= per_minute
    # Four bursts of at most 10, each exactly one (window + skew) after the previous.
    assert sorted(set(times)) == [0.0, 62.0, 124.0, 186.0]
    # Waiters are served in arrival order, with one sleep per burst: no busy-spinning.
    assert [index for index, _ in sent] == list(range(35))
    assert fake.sleeps == [62.0, 62.0, 62.0]


async def test_waits_exactly_until_the_oldest_send_leaves_the_window() -> None:
    fake = FakeTime()
    budget = make_budget(fake, per_minute=2, per_hour=100, skew_s=2.0)

    await budget.acquire()  # t=0
    fake.advance(10)
    await budget.acquire()  # t=10
    await budget.acquire()  # must wait until 0 + 60 + 2

    assert fake.sleeps == [pytest.approx(52.0)]
    assert fake.now == pytest.approx(62.0)
    assert budget.in_window_minute == 2  # the sends at t=10 and t=62


async def test_hourly_window_is_enforced_too() -> None:
    fake = FakeTime()
    budget = make_budget(fake, per_minute=1_000, per_hour=3, skew_s=2.0)

    for _ in range(3):
        await budget.acquire()
    await budget.acquire()

    assert fake.sleeps == [pytest.approx(3602.0)]
    assert budget.in_window_hour == 1


async def test_observe_with_low_remaining_blocks_until_reset() -> None:
    fake = FakeTime()
    budget = make_budget(fake)

    budget.observe({"RateLimit-Remaining": "1", "RateLimit-Reset": str(int(fake.wall()) + 30)})
    await budget.acquire()

    assert fake.sleeps == [pytest.approx(30.0)]


@pytest.mark.parametrize(
    "headers",
    [
        {"ratelimit-remaining": "4000", "ratelimit-reset": str(int(WALL_EPOCH) + 30)},
        {"ratelimit-remaining": "0"},  # no reset: nothing to wait for
        {"ratelimit-remaining": "garbage", "ratelimit-reset": "also garbage"},
        {"ratelimit-remaining": "0", "ratelimit-reset": str(int(WALL_EPOCH) - 5)},  # past
        {},
    ],
)
async def test_observe_ignores_healthy_missing_or_broken_headers(headers: dict[str, str]) -> None:
    fake = FakeTime()
    budget = make_budget(fake)

    budget.observe(headers)
    await budget.acquire()

    assert fake.sleeps == []


async def test_observe_caps_an_absurd_reset_at_one_hour() -> None:
    fake = FakeTime()
    budget = make_budget(fake)

    budget.observe({"ratelimit-remaining": "0", "ratelimit-reset": str(WALL_EPOCH + 10**9)})

    assert budget.blocked_for_s == pytest.approx(RateBudget.MAX_HEADER_BLOCK_S)


async def test_pause_for_blocks_every_caller() -> None:
    fake = FakeTime()
    budget = make_budget(fake)
    budget.pause_for(15)
    sent_at: list[float] = []

    async def worker() -> None:
        await budget.acquire()
        sent_at.append(fake.now)

    await asyncio.gather(*(worker() for _ in range(5)))

    assert sent_at == [pytest.approx(15.0)] * 5
    assert fake.sleeps == [pytest.approx(15.0)]


async def test_a_shorter_pause_never_shortens_a_longer_one() -> None:
    fake = FakeTime()
    budget = make_budget(fake)

    budget.pause_for(20)
    budget.pause_for(5)
    budget.pause_for(-3)
    budget.pause_for(float("nan"))

    assert budget.blocked_for_s == pytest.approx(20.0)


async def test_a_pause_arriving_while_waiting_is_honoured() -> None:
    fake = FakeTime()
    budget = make_budget(fake, per_minute=1, per_hour=100, skew_s=0.0)
    await budget.acquire()  # t=0, the next slot frees at t=60
    original_sleep = fake.sleep

    async def sleep_and_get_rate_limited(seconds: float) -> None:
        if not fake.sleeps:
            budget.pause_for(100)  # a 429 elsewhere in the process, at t=0
        await original_sleep(seconds)

    budget._sleep = sleep_and_get_rate_limited
    await budget.acquire()

    assert fake.now == pytest.approx(100.0)


async def test_in_window_minute_drops_as_sends_expire() -> None:
    fake = FakeTime()
    budget = make_budget(fake, per_minute=10, per_hour=100, skew_s=2.0)
    for _ in range(3):
        await budget.acquire()

    fake.advance(61.9)
    assert budget.in_window_minute == 3
    fake.advance(0.2)
    assert budget.in_window_minute == 0
    assert budget.in_window_hour == 3


def test_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        RateBudget(per_minute=0)
    with pytest.raises(ValueError):
        RateBudget(skew_s=-1)


async def test_real_clock_defaults_work_for_a_cancelled_waiter() -> None:
    """A waiter cancelled mid-sleep must release the lock for the others."""
    budget = RateBudget(per_minute=1, per_hour=100, skew_s=0.0)
    await budget.acquire()
    stuck = asyncio.create_task(budget.acquire())  # would wait ~60 s
    await asyncio.sleep(0.01)
    stuck.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stuck

    budget.pause_for(0)  # no-op
    assert budget._locks[False] is not None
    assert not budget._locks[False].locked()


# ------------------------------------------------------------ the follow-ups' reserve


async def test_bulk_requests_leave_the_follow_ups_reserve_and_never_block_them() -> None:
    # Issue 23: a storm's creates must not take every token of the minute, or a
    # droplet that booted is seen only at the next minute. 5% (1 in 20) is kept.
    fake = FakeTime()
    waits: list[float] = []

    async def wait_forever(seconds: float) -> None:  # the clock stands still
        waits.append(seconds)
        await asyncio.Event().wait()

    budget = RateBudget(per_minute=40, per_hour=10_000, clock=fake.clock, sleep=wait_forever)
    assert budget.minute_reserve == 2
    for _ in range(38):
        await budget.acquire(bulk=True)
    assert waits == []  # 38 creates at once: within their share

    create = asyncio.create_task(budget.acquire(bulk=True))
    await asyncio.sleep(0)
    assert not create.done() and len(waits) == 1  # the 39th waits for the next minute...
    await budget.acquire()  # ...while a follow-up goes at once, and another
    await budget.acquire()
    assert len(waits) == 1 and budget.in_window_minute == 40
    create.cancel()


async def test_follow_ups_may_use_the_whole_window_when_creates_do_not() -> None:
    fake = FakeTime()
    budget = make_budget(fake, per_minute=40, per_hour=10_000)
    for _ in range(40):
        await budget.acquire()
    assert fake.now == 0
    assert budget.in_window_minute == 40


def test_a_tiny_budget_keeps_no_reserve() -> None:
    assert RateBudget(per_minute=19, per_hour=100).minute_reserve == 0
    assert RateBudget(per_minute=225, per_hour=4750).minute_reserve == 11


class GatedTime(FakeTime):
    """A fake clock whose sleeps wait for the test to open the gate: the state of a
    budget with a request asleep in acquire() can be looked at."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await self.gate.wait()
        self.now += seconds


async def test_bulk_waiting_says_whether_creates_wait_for_the_budget() -> None:
    fake = GatedTime()
    budget = make_budget(fake, per_minute=40, per_hour=10_000)  # 2 kept for the follow-ups
    assert not budget.bulk_waiting  # nobody waiting

    # The creates' share of the minute spent: the next create sleeps for the window.
    for _ in range(40 - budget.minute_reserve):
        await budget.acquire(bulk=True)
    assert not budget.bulk_waiting  # none of them had to wait
    waiting = asyncio.create_task(budget.acquire(bulk=True))
    await asyncio.sleep(0)
    assert fake.sleeps and budget.bulk_waiting
    await budget.acquire()  # a follow-up goes at once, from the reserve
    assert budget.bulk_waiting
    fake.gate.set()
    await waiting
    assert not budget.bulk_waiting
