"""DropletWatcher: one round per interval answers every waiting worker, cheaply."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest

from order_service.provisioning.digitalocean import DigitalOceanUnavailableError, Droplet
from order_service.provisioning.watcher import PAGE_SIZE, DropletWatcher

INTERVAL = 0.01
COHORT = "vps-batch-2030010112"
OTHER_COHORT = "vps-batch-2030010113"


def droplet(droplet_id: int, status: str = "new", tags: Iterable[str] = (COHORT,)) -> Droplet:
    return Droplet(
        id=droplet_id,
        name=f"vps-{droplet_id}",
        status=status,
        region="sgp1",
        size="s-1vcpu-1gb",
        image="ubuntu-22-04-x64",
        ipv4_public=None,
        ipv4_private=None,
        tags=tuple(tags),
        created_at=None,
    )


class FakeBudget:
    """What the watcher reads of the client's rate budget: do creates wait for it?"""

    def __init__(self) -> None:
        self.bulk_waiting = False
        self.minute_reserve = 11  # of 225 a minute


class FakeClient:
    """Stands in for DigitalOceanClient: droplets by id, listings by tag, call counts."""

    def __init__(self) -> None:
        self.budget = FakeBudget()
        self.droplets: dict[int, Droplet] = {}
        self.calls: Counter[str] = Counter()
        self.listed: list[tuple[str, int]] = []
        self.fetched: list[int] = []
        self.list_error: Exception | None = None
        self.get_errors: dict[int, Exception] = {}

    def add(self, *droplets: Droplet) -> None:
        for item in droplets:
            self.droplets[item.id] = item

    async def get_droplet(self, droplet_id: int) -> Droplet | None:
        self.calls["get"] += 1
        self.fetched.append(droplet_id)
        await asyncio.sleep(0)
        if droplet_id in self.get_errors:
            raise self.get_errors[droplet_id]
        return self.droplets.get(droplet_id)

    async def list_droplets_by_tag(
        self, tag: str, *, per_page: int = 200, before_create: bool = False
    ) -> list[Droplet]:
        self.calls["list"] += 1
        self.listed.append((tag, per_page))
        await asyncio.sleep(0)
        if self.list_error is not None:
            raise self.list_error
        return [d for d in self.droplets.values() if tag in d.tags]


@pytest.fixture
def client() -> FakeClient:
    return FakeClient()


_running: list[asyncio.Task[None]] = []


@pytest.fixture
async def watcher(client: FakeClient) -> AsyncIterator[DropletWatcher]:
    watcher = DropletWatcher(client, INTERVAL)  # type: ignore[arg-type]
    yield watcher
    while _running:
        task = _running.pop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def start(watcher: DropletWatcher) -> None:
    _running.append(asyncio.create_task(watcher.run()))


async def one_round(watcher: DropletWatcher, requests: list[tuple[int, str | None]]) -> list[Any]:
    """Register every waiter first, then let exactly one round answer them all."""
    waiters = [asyncio.create_task(watcher.observe(i, cohort)) for i, cohort in requests]
    await asyncio.sleep(0)  # every observe() has queued its future
    rounds = watcher.rounds
    if not _running:
        start(watcher)
    results = await asyncio.wait_for(asyncio.gather(*waiters, return_exceptions=True), timeout=5)
    assert watcher.rounds == rounds + 1, "all waiters must be served by a single round"
    return results


async def test_many_waiters_in_a_cohort_share_one_listing(
    watcher: DropletWatcher, client: FakeClient
) -> None:
    client.add(*(droplet(i, "active" if i % 2 else "new") for i in range(1, 51)))

    results = await one_round(watcher, [(i, COHORT) for i in range(1, 51)])

    assert client.calls == {"list": 1}
    assert client.listed == [(COHORT, PAGE_SIZE)]
    assert [r.id for r in results] == list(range(1, 51))
    assert [r.status for r in results[:2]] == ["active", "new"]


async def test_a_lone_waiter_uses_a_get(watcher: DropletWatcher, client: FakeClient) -> None:
    client.add(droplet(7, "active"))

    (result,) = await one_round(watcher, [(7, COHORT)])

    assert client.calls == {"get": 1}
    assert client.fetched == [7]
    assert result.status == "active"


async def test_waiters_without_a_cohort_use_gets(
    watcher: DropletWatcher, client: FakeClient
) -> None:
    # Droplets adopted from before cohort tags existed carry none.
    client.add(droplet(1, tags=()), droplet(2, tags=()), droplet(3, tags=()))

    results = await one_round(watcher, [(1, None), (2, None), (3, None)])

    assert client.calls == {"get": 3}
    assert sorted(client.fetched) == [1, 2, 3]
    assert [r.id for r in results] == [1, 2, 3]


async def test_two_workers_waiting_on_one_droplet_get_one_answer(
    watcher: DropletWatcher, client: FakeClient
) -> None:
    client.add(droplet(5, "active"))

    first, second = await one_round(watcher, [(5, None), (5, None)])

    assert client.calls == {"get": 1}
    assert first is second


async def test_droplet_missing_from_the_listing_resolves_to_none(
    watcher: DropletWatcher, client: FakeClient
) -> None:
    # DO is eventually consistent: droplet 3 is not listed (yet, or any more).
    client.add(droplet(1), droplet(2))

    results = await one_round(watcher, [(1, COHORT), (2, COHORT), (3, COHORT)])

    assert client.calls == {"list": 1}
    assert [r.id if r else None for r in results] == [1, 2, None]


async def test_a_get_for_an_unknown_droplet_resolves_to_none(
    watcher: DropletWatcher, client: FakeClient
) -> None:
    (result,) = await one_round(watcher, [(404, COHORT)])
    assert result is None
    assert client.calls == {"get": 1}


async def test_a_listing_failure_reaches_every_waiter_of_the_cohort(
    watcher: DropletWatcher, client: FakeClient
) -> None:
    client.add(*(droplet(i) for i in range(1, 4)), droplet(10, tags=(OTHER_COHORT,)))
    client.add(droplet(11, tags=(OTHER_COHORT,)))
    failure = DigitalOceanUnavailableError("DigitalOcean answered 503 to list_droplets")
    client.list_error = failure

    results = await one_round(
        watcher, [(1, COHORT), (2, COHORT), (3, COHORT), (10, OTHER_COHORT), (11, OTHER_COHORT)]
    )

    assert results == [failure] * 5
    assert client.calls == {"list": 2}


async def test_a_failed_get_reaches_only_its_own_waiters(
    watcher: DropletWatcher, client: FakeClient
) -> None:
    client.add(droplet(1, tags=()), droplet(2, tags=()))
    failure = DigitalOceanUnavailableError("DigitalOcean unreachable")
    client.get_errors[1] = failure

    first, again, second = await one_round(watcher, [(1, None), (1, None), (2, None)])

    assert first is failure and again is failure
    assert isinstance(second, Droplet) and second.id == 2


async def test_the_watcher_keeps_serving_after_a_failed_round(
    watcher: DropletWatcher, client: FakeClient
) -> None:
    client.add(droplet(1), droplet(2))
    client.list_error = DigitalOceanUnavailableError("DigitalOcean unreachable")
    failed = await one_round(watcher, [(1, COHORT), (2, COHORT)])
    assert all(isinstance(r, DigitalOceanUnavailableError) for r in failed)

    client.list_error = None
    recovered = await one_round(watcher, [(1, COHORT), (2, COHORT)])

    assert [r.id for r in recovered] == [1, 2]
    assert client.calls == {"list": 2}


async def test_two_cohorts_are_listed_separately(
    watcher: DropletWatcher, client: FakeClient
) -> None:
    client.add(droplet(1), droplet(2), droplet(3))
    client.add(*(droplet(i, tags=(OTHER_COHORT,)) for i in (21, 22)))

    results = await one_round(
        watcher, [(1, COHORT), (21, OTHER_COHORT), (2, COHORT), (22, OTHER_COHORT), (3, COHORT)]
    )

    assert client.calls == {"list": 2}
    assert sorted(client.listed) == [(COHORT, PAGE_SIZE), (OTHER_COHORT, PAGE_SIZE)]
    assert [r.id for r in results] == [1, 21, 2, 22, 3]
    # Each waiter got the droplet from its own cohort's listing.
    assert {r.tags for r in results} == {(COHORT,), (OTHER_COHORT,)}


async def test_a_big_cohort_and_a_small_one_are_served_their_own_way(
    watcher: DropletWatcher, client: FakeClient
) -> None:
    client.add(*(droplet(i) for i in range(1, 6)))
    client.add(droplet(30, tags=(OTHER_COHORT,)))

    await one_round(watcher, [*((i, COHORT) for i in range(1, 6)), (30, OTHER_COHORT)])

    assert client.calls == {"list": 1, "get": 1}
    assert client.listed == [(COHORT, PAGE_SIZE)]
    assert client.fetched == [30]


async def test_page_estimate_grows_with_a_big_cohort(
    watcher: DropletWatcher, client: FakeClient
) -> None:
    # 450 droplets in flight in one hour: the listing takes 3 pages of 200.
    client.add(*(droplet(i) for i in range(1, 451)))
    results = await one_round(watcher, [(i, COHORT) for i in range(1, 451)])
    assert len(results) == 450 and all(r is not None for r in results)
    assert client.calls == {"list": 1}

    # Two stragglers: two GETs beat a 3-page listing.
    await one_round(watcher, [(449, COHORT), (450, COHORT)])
    assert client.calls == {"list": 1, "get": 2}

    # Three waiters cost as much either way: still GETs (a listing must be cheaper).
    await one_round(watcher, [(1, COHORT), (2, COHORT), (3, COHORT)])
    assert client.calls == {"list": 1, "get": 5}

    # Four waiters: a 3-page listing is cheaper again.
    await one_round(watcher, [(1, COHORT), (2, COHORT), (3, COHORT), (4, COHORT)])
    assert client.calls == {"list": 2, "get": 5}


async def test_page_estimate_shrinks_when_the_cohort_does(
    watcher: DropletWatcher, client: FakeClient
) -> None:
    client.add(*(droplet(i) for i in range(1, 451)))
    await one_round(watcher, [(i, COHORT) for i in range(1, 451)])
    # Most droplets finished and left; the next listing sees only 4 of them.
    for droplet_id in range(5, 451):
        client.droplets.pop(droplet_id)
    await one_round(watcher, [(i, COHORT) for i in range(1, 5)])
    assert client.calls == {"list": 2}

    # One page again: two waiters are worth a listing.
    await one_round(watcher, [(1, COHORT), (2, COHORT)])
    assert client.calls == {"list": 3}


async def test_nobody_waiting_means_no_requests(
    watcher: DropletWatcher, client: FakeClient
) -> None:
    start(watcher)
    await asyncio.sleep(INTERVAL * 10)
    assert watcher.rounds == 0
    assert client.calls == {}


async def test_a_waiter_that_gives_up_does_not_break_the_round(
    watcher: DropletWatcher, client: FakeClient
) -> None:
    # A worker cancelled mid-wait (lease lost, shutdown) leaves a cancelled future.
    client.add(droplet(1), droplet(2))
    quitter = asyncio.create_task(watcher.observe(1, COHORT))
    await asyncio.sleep(0)
    quitter.cancel()

    results = await one_round(watcher, [(1, COHORT), (2, COHORT)])

    assert [r.id for r in results] == [1, 2]
    assert quitter.cancelled()


async def test_rounds_are_spaced_while_creates_wait_for_the_budget(client: FakeClient) -> None:
    """A storm's creates take every slot of the budget minute but the follow-ups' share:
    rounds every interval would spend it within seconds, long before the minute ends."""
    now = [0.0]
    watcher = DropletWatcher(client, INTERVAL, clock=lambda: now[0])  # type: ignore[arg-type]
    assert watcher.paced_gap_s == pytest.approx(60 * 2 / 11)
    client.add(droplet(1), droplet(2))
    client.budget.bulk_waiting = True
    start(watcher)
    try:
        await asyncio.wait_for(watcher.observe(1, COHORT), timeout=5)  # the first round goes
        assert watcher.rounds == 1
        second = asyncio.create_task(watcher.observe(2, COHORT))
        await asyncio.sleep(INTERVAL * 10)
        assert watcher.rounds == 1 and not second.done()  # held: creates wait
        now[0] += watcher.paced_gap_s
        await asyncio.wait_for(second, timeout=5)
        assert watcher.rounds == 2
        # No create waits any more: the watcher polls at its interval.
        client.budget.bulk_waiting = False
        for droplet_id in (1, 2):
            await asyncio.wait_for(watcher.observe(droplet_id, COHORT), timeout=5)
        assert watcher.rounds == 4
    finally:
        while _running:
            task = _running.pop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
