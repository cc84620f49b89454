"""DO's region and size lists (SPEC §14): cached, one fetch for concurrent callers,
the last copy while DO is down, 503 when there never was one."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest

from mocks.digitalocean import FakeConfig
from mocks.digitalocean import create_app as create_fake_do
from order_service import clock
from order_service.accounts.clients import AccountClients
from order_service.accounts.defaults import ensure_default_account
from order_service.accounts.do_catalog import DoCatalog
from order_service.db import create_sessionmaker
from order_service.errors import DigitalOceanUnavailable
from tests.conftest import make_settings


@pytest.fixture
async def catalog_parts(database: Any, engine: Any, clean_db: None, fast_do_retries: None) -> Any:
    fake = create_fake_do(FakeConfig())
    settings = make_settings(database.url, digitalocean_api_url="http://do")
    sessionmaker = create_sessionmaker(engine)
    await ensure_default_account(sessionmaker)
    accounts = AccountClients(settings, sessionmaker, httpx.ASGITransport(app=fake))
    yield fake.state.fake, accounts
    await accounts.aclose()


async def test_regions_offering_a_size_are_the_available_ones_sorted(catalog_parts: Any) -> None:
    _, accounts = catalog_parts
    offer = await DoCatalog(accounts, timedelta(minutes=10)).offer()

    slugs = [region.slug for region in offer.regions_for("s-4vcpu-8gb")]
    assert slugs == sorted(slugs) and "sgp1" in slugs
    assert "blr1" not in slugs  # the size is not offered there
    assert "nyc2" not in slugs  # unavailable
    assert [r.slug for r in offer.regions_for("s-4vcpu-8gb", ["blr1", "sgp1"])] == ["sgp1"]
    assert offer.offers("s-1vcpu-1gb", "sgp1") and not offer.offers("s-4vcpu-8gb", "blr1")
    assert offer.regions_for("no-such-size") == []


async def test_concurrent_callers_share_one_fetch_and_the_ttl_holds_it(catalog_parts: Any) -> None:
    fake, accounts = catalog_parts
    catalog = DoCatalog(accounts, timedelta(minutes=10))

    await asyncio.gather(*(catalog.offer() for _ in range(20)))
    after_first = fake.stats()["by_route"]
    assert (after_first["regions"], after_first["sizes"]) == (1, 1)
    clock.advance(timedelta(minutes=9))
    await catalog.offer()
    assert fake.stats()["by_route"]["regions"] == 1
    clock.advance(timedelta(minutes=2))
    await catalog.offer()
    assert fake.stats()["by_route"]["regions"] == 2


async def test_do_down_serves_the_last_lists_and_never_fetched_is_503(catalog_parts: Any) -> None:
    fake, accounts = catalog_parts
    catalog = DoCatalog(accounts, timedelta(seconds=1))
    fake.update_config({"fail_next": {"regions": 100}})
    with pytest.raises(DigitalOceanUnavailable):
        await catalog.offer()

    fake.update_config({"fail_next": {"regions": 0}})
    fresh = await catalog.offer()
    fake.update_config({"fail_next": {"regions": 100}})
    clock.advance(timedelta(hours=1))
    stale = await catalog.offer()
    assert stale is fresh
