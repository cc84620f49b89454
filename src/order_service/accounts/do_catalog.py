"""DO's region and size lists, as customers' choices and plan changes need them (SPEC §14, §15).

Fetched from any healthy account (`GET /v2/regions`, `GET /v2/sizes`, within
that account's budget) and kept DIGITALOCEAN_CATALOG_TTL. Concurrent callers
share one fetch. When DO cannot be reached the last lists are used, however
old; with none yet the caller gets `503 DIGITALOCEAN_UNAVAILABLE`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from order_service import clock
from order_service.accounts.clients import AccountClients
from order_service.errors import DigitalOceanUnavailable
from order_service.provisioning.digitalocean import DigitalOceanError, Region, Size

logger = logging.getLogger("order_service.accounts")


@dataclass(frozen=True)
class Offer:
    """DO's regions and sizes as fetched at `fetched_at`."""

    regions: dict[str, Region]
    sizes: dict[str, Size]
    fetched_at: datetime

    def regions_for(self, size_slug: str, allowed: Iterable[str] = ()) -> list[Region]:
        """The available regions that offer the size (each list naming the other), limited
        to `allowed` when given, sorted by slug."""
        size = self.sizes.get(size_slug)
        if size is None:
            return []
        allowed = set(allowed)
        return sorted(
            (
                region
                for region in self.regions.values()
                if region.available
                and size_slug in region.sizes
                and region.slug in size.regions
                and (not allowed or region.slug in allowed)
            ),
            key=lambda region: region.slug,
        )

    def offers(self, size_slug: str, region_slug: str) -> bool:
        """Whether DO offers the size in the region now."""
        return any(region.slug == region_slug for region in self.regions_for(size_slug))


class DoCatalog:
    def __init__(self, accounts: AccountClients, ttl: timedelta) -> None:
        self._accounts = accounts
        self._ttl = ttl
        self._offer: Offer | None = None
        self._fetching: asyncio.Task[Offer | None] | None = None

    async def offer(self) -> Offer:
        """The lists, fresh within the TTL; stale if DO is down; 503 if there never were any."""
        current = self._offer
        if current is not None and clock.now() - current.fetched_at < self._ttl:
            return current
        if self._fetching is None or self._fetching.done():
            self._fetching = asyncio.get_running_loop().create_task(self._fetch())
        fetched = await asyncio.shield(self._fetching)
        if fetched is not None:
            self._offer = fetched
            return fetched
        if self._offer is not None:
            return self._offer  # DO is down: the last lists, however old
        raise DigitalOceanUnavailable()

    async def _fetch(self) -> Offer | None:
        for account in await self._accounts.usable():
            try:
                regions, sizes = await asyncio.gather(
                    account.client.list_regions(), account.client.list_sizes()
                )
            except DigitalOceanError as exc:
                logger.warning("DO's region/size lists from %s failed: %s", account.name, exc)
                continue
            return Offer(
                regions={region.slug: region for region in regions},
                sizes={size.slug: size for size in sizes},
                fetched_at=clock.now(),
            )
        return None
