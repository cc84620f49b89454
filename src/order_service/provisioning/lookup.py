"""Asks DO "does this order already have a droplet?" for many orders at once.

SPEC section 7 wants DO asked before every create, the first included (a
database that lost its last commits must not buy a second droplet). One
listing by the order's tag per create doubles a storm's DO requests and,
with a 225/min budget, pushes half of a 100-order storm into the next
minute. So lookups are coalesced, like the watcher's polls: the workers
that ask within a short window are answered by one round, which is either
one paginated listing of every droplet the service owns (tag
`order-service`, 200 a page) grouped by order tag, or one listing per
order tag — whichever takes fewer requests, judged by the size of the last
full listing.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections import defaultdict

from order_service.provisioning.digitalocean import DigitalOceanClient, Droplet

logger = logging.getLogger("order_service.provisioning")

SERVICE_TAG = "order-service"
PAGE_SIZE = 200


def order_tag(order_id: uuid.UUID) -> str:
    return f"order-{order_id}"


class ExistingDroplets:
    def __init__(self, client: DigitalOceanClient, *, gather_s: float = 0.05) -> None:
        self._client = client
        self._gather_s = gather_s
        self._waiting: dict[uuid.UUID, list[asyncio.Future[list[Droplet]]]] = defaultdict(list)
        self._round: asyncio.Task[None] | None = None
        # Droplets the last full listing returned: a full listing pays off only
        # for more waiters than the pages it takes. Unknown at first: list.
        self._service_droplets: int | None = None
        self.listings = 0

    async def find(self, order_id: uuid.UUID) -> list[Droplet]:
        """The droplets DO lists with the order's tag, as of a listing made after this call."""
        future: asyncio.Future[list[Droplet]] = asyncio.get_running_loop().create_future()
        self._waiting[order_id].append(future)
        if self._round is None or self._round.done():
            self._round = asyncio.create_task(self._run_round(), name="droplet-lookup")
        return await future

    async def _run_round(self) -> None:
        try:
            await self._answer_waiting()
        finally:
            # Workers that asked while this round was listing get the next one.
            if self._waiting:
                self._round = asyncio.create_task(self._run_round(), name="droplet-lookup")

    async def _answer_waiting(self) -> None:
        # Let the workers of one scan ask together (they start within milliseconds).
        await asyncio.sleep(self._gather_s)
        waiting, self._waiting = self._waiting, defaultdict(list)
        try:
            found = await self._look_up(list(waiting))
        except Exception as exc:  # every waiter sees the same failure (DO unavailable, ...)
            for futures in waiting.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            return
        for order_id, futures in waiting.items():
            for future in futures:
                if not future.done():
                    future.set_result(list(found.get(order_id, [])))

    async def _look_up(self, order_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Droplet]]:
        pages = (
            1
            if self._service_droplets is None
            else max(1, math.ceil(self._service_droplets / PAGE_SIZE))
        )
        if len(order_ids) > pages:
            return await self._list_everything(order_ids)
        answers = await asyncio.gather(
            *(
                self._client.list_droplets_by_tag(order_tag(order_id), before_create=True)
                for order_id in order_ids
            )
        )
        self.listings += len(order_ids)
        return dict(zip(order_ids, answers, strict=True))

    async def _list_everything(self, order_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Droplet]]:
        droplets = await self._client.list_droplets_by_tag(
            SERVICE_TAG, per_page=PAGE_SIZE, before_create=True
        )
        self.listings += 1
        self._service_droplets = len(droplets)
        wanted = {order_tag(order_id): order_id for order_id in order_ids}
        found: dict[uuid.UUID, list[Droplet]] = defaultdict(list)
        for droplet in droplets:
            for tag in droplet.tags:
                if tag in wanted:
                    found[wanted[tag]].append(droplet)
        return found
