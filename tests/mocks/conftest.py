"""Fixtures of the mock tests: a manual clock and fresh fake DigitalOcean apps on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from mocks.digitalocean import FakeConfig, create_app
from tests.mocks.fake_do import ClientFactory, ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def make_client(clock: ManualClock) -> AsyncIterator[ClientFactory]:
    """Build clients on fresh apps driven by the manual clock; closed at teardown."""
    clients: list[httpx.AsyncClient] = []

    def factory(**config: Any) -> httpx.AsyncClient:
        config.setdefault("boot_seconds", 2.0)
        app = create_app(FakeConfig(**config), clock=clock, wall_clock=clock.wall)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://do")
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()
