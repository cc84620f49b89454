"""Follows droplets in flight with a number of DO requests that does not grow
with the number of droplets.

Workers ask `observe(droplet_id, cohort_tag)` and wait for the next round.
Once per poll interval a round answers every waiting worker: for a cohort tag
(droplets created in the same hour share one) with more waiters than pages,
one paginated tag listing (200 droplets a page) serves them all; otherwise a
GET per droplet is cheaper.

Rounds are follow-ups: they draw on the share of each budget minute kept from
the creates (rate_budget.py, 11 of 225). While a storm's creates wait for the
budget, they take every other slot of the minute as it frees, so that share is
all the follow-ups get; a round every poll interval spent it within seconds and
the droplets created after that were seen only when the minute slid (bench: 31
of 500 orders ACTIVE from 9 s to 63 s). So while creates wait in this process,
rounds (about two requests each) are spaced to spend the share at the rate it is
given, `paced_gap_s`; with no create waiting, the watcher polls at its interval.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable

from order_service.provisioning.digitalocean import DigitalOceanClient, Droplet

logger = logging.getLogger("order_service.provisioning")

PAGE_SIZE = 200
# The follow-ups' share of a minute (rate_budget.py: 11 of 225) is spread over
# rounds this far apart while creates wait, at most.
MAX_PACED_GAP_S = 15.0


class DropletWatcher:
    def __init__(
        self,
        client: DigitalOceanClient,
        interval_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._interval_s = interval_s
        self._clock = clock
        self._last_round = -math.inf
        self._waiters: dict[str, dict[int, list[asyncio.Future[Droplet | None]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        # Pages a cohort's listing took last time: a listing pays off only for
        # more waiters than that.
        self._pages: dict[str, int] = {}
        self.rounds = 0

    async def observe(self, droplet_id: int, cohort: str | None) -> Droplet | None:
        """The droplet as DO shows it in the next round; None if DO does not show it."""
        future: asyncio.Future[Droplet | None] = asyncio.get_running_loop().create_future()
        self._waiters[cohort or ""][droplet_id].append(future)
        return await future

    @property
    def paced_gap_s(self) -> float:
        """Seconds between rounds while creates wait: a minute over the rounds (of about
        two requests each) the follow-ups' share pays for; never below the interval."""
        reserve = max(1, self._client.budget.minute_reserve)
        return max(self._interval_s, min(MAX_PACED_GAP_S, 60.0 * 2 / reserve))

    def _round_due(self) -> bool:
        if not self._client.budget.bulk_waiting:
            return True
        return self._clock() - self._last_round >= self.paced_gap_s

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            if not self._waiters or not self._round_due():
                continue
            batch, self._waiters = self._waiters, defaultdict(lambda: defaultdict(list))
            self._last_round = self._clock()
            self.rounds += 1
            await asyncio.gather(
                *(self._serve(cohort, waiters) for cohort, waiters in batch.items())
            )

    async def _serve(
        self, cohort: str, waiters: dict[int, list[asyncio.Future[Droplet | None]]]
    ) -> None:
        if cohort and len(waiters) > self._pages.get(cohort, 1):
            await self._serve_by_listing(cohort, waiters)
        else:
            await asyncio.gather(
                *(self._serve_one(droplet_id, futures) for droplet_id, futures in waiters.items())
            )

    async def _serve_by_listing(
        self, cohort: str, waiters: dict[int, list[asyncio.Future[Droplet | None]]]
    ) -> None:
        try:
            droplets = await self._client.list_droplets_by_tag(cohort, per_page=PAGE_SIZE)
        except Exception as exc:  # every waiter gets the failure to handle itself
            for futures in waiters.values():
                _fail(futures, exc)
            return
        self._pages[cohort] = max(1, math.ceil(len(droplets) / PAGE_SIZE))
        by_id = {droplet.id: droplet for droplet in droplets}
        for droplet_id, futures in waiters.items():
            _resolve(futures, by_id.get(droplet_id))

    async def _serve_one(
        self, droplet_id: int, futures: list[asyncio.Future[Droplet | None]]
    ) -> None:
        try:
            droplet = await self._client.get_droplet(droplet_id)
        except Exception as exc:
            _fail(futures, exc)
            return
        _resolve(futures, droplet)


def _resolve(futures: list[asyncio.Future[Droplet | None]], droplet: Droplet | None) -> None:
    for future in futures:
        if not future.done():
            future.set_result(droplet)


def _fail(futures: list[asyncio.Future[Droplet | None]], exc: Exception) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(exc)
