"""ExistingDroplets: the lookups before creates, coalesced into as few listings as possible."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from order_service.provisioning.digitalocean import DigitalOceanUnavailableError, Droplet
from order_service.provisioning.lookup import SERVICE_TAG, ExistingDroplets, order_tag


def droplet(droplet_id: int, *tags: str) -> Droplet:
    return Droplet.from_api(
        {"id": droplet_id, "name": f"d{droplet_id}", "status": "active", "tags": list(tags)}
    )


class FakeClient:
    """Lists droplets by tag from a fixed set, counting the listings."""

    def __init__(self, droplets: list[Droplet], *, fail: bool = False) -> None:
        self.droplets = droplets
        self.calls: list[str] = []
        self.fail = fail

    async def list_droplets_by_tag(
        self, tag: str, *, per_page: int = 200, before_create: bool = False
    ) -> list[Droplet]:
        self.calls.append(tag)
        await asyncio.sleep(0)
        if self.fail:
            raise DigitalOceanUnavailableError("DO is down")
        return [d for d in self.droplets if tag in d.tags]


def lookup(client: FakeClient) -> ExistingDroplets:
    return ExistingDroplets(client, gather_s=0.01)  # type: ignore[arg-type]


async def test_a_storm_of_lookups_is_one_listing_of_the_services_droplets() -> None:
    orders = [uuid.uuid4() for _ in range(50)]
    existing = droplet(7, SERVICE_TAG, order_tag(orders[3]))
    client = FakeClient([existing, droplet(8, SERVICE_TAG, "order-someone-else")])
    finder = lookup(client)
    answers = await asyncio.gather(*(finder.find(order_id) for order_id in orders))
    assert client.calls == [SERVICE_TAG]
    assert [d.id for d in answers[3]] == [7]
    assert all(answer == [] for i, answer in enumerate(answers) if i != 3)


async def test_a_single_lookup_lists_the_orders_own_tag() -> None:
    order_id = uuid.uuid4()
    # Tagged for the order only (not by us): a per-order listing still finds it.
    client = FakeClient([droplet(9, order_tag(order_id))])
    answer = await lookup(client).find(order_id)
    assert client.calls == [order_tag(order_id)]
    assert [d.id for d in answer] == [9]


async def test_per_order_listings_when_the_service_listing_would_take_more_pages() -> None:
    many = [droplet(i, SERVICE_TAG, f"order-{uuid.uuid4()}") for i in range(1, 1001)]  # 5 pages
    client = FakeClient(many)
    finder = lookup(client)
    first = [uuid.uuid4() for _ in range(10)]
    await asyncio.gather(*(finder.find(order_id) for order_id in first))
    assert client.calls == [SERVICE_TAG]
    client.calls.clear()
    second = [uuid.uuid4() for _ in range(3)]  # 3 waiters < 5 pages
    await asyncio.gather(*(finder.find(order_id) for order_id in second))
    assert sorted(client.calls) == sorted(order_tag(order_id) for order_id in second)


async def test_a_lookup_made_during_a_round_gets_the_next_one() -> None:
    order_id = uuid.uuid4()
    client = FakeClient([droplet(5, SERVICE_TAG, order_tag(order_id))])
    release = asyncio.Event()
    listing = client.list_droplets_by_tag

    async def slow_listing(
        tag: str, *, per_page: int = 200, before_create: bool = False
    ) -> list[Droplet]:
        await release.wait()
        return await listing(tag, per_page=per_page)

    client.list_droplets_by_tag = slow_listing  # type: ignore[method-assign]
    finder = lookup(client)
    first = asyncio.create_task(finder.find(uuid.uuid4()))
    while not client.calls and not release.is_set():
        await asyncio.sleep(0.005)
        if finder._round is not None and not finder._waiting:
            break  # the first round took its waiters and is listing
    second = asyncio.create_task(finder.find(order_id))  # asks while the listing runs
    await asyncio.sleep(0.02)
    release.set()
    assert await first == []
    # Answered by a listing made after it asked (a second round), not left waiting.
    assert [d.id for d in await asyncio.wait_for(second, 2)] == [5]
    assert len(client.calls) == 2


async def test_a_failed_listing_fails_every_waiter() -> None:
    finder = lookup(FakeClient([], fail=True))
    results: list[Any] = await asyncio.gather(
        *(finder.find(uuid.uuid4()) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, DigitalOceanUnavailableError) for r in results)
    with pytest.raises(DigitalOceanUnavailableError):
        await finder.find(uuid.uuid4())
