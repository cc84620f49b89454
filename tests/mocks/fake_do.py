"""Helpers shared by the tests of the fake DigitalOcean API (mocks/digitalocean).

Everything time-dependent runs on a :class:`ManualClock` injected into the
fake, so tests move time instead of sleeping. The ``clock`` and ``make_client``
fixtures are in ``conftest.py`` next to this file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

TOKEN = "fake-do-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WALL_START = 1_800_000_000.0

ClientFactory = Callable[..., httpx.AsyncClient]


class ManualClock:
    """Monotonic clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def wall(self) -> float:
        # Wall time moves in lockstep, so epoch headers are predictable.
        return WALL_START + (self.now - 1000.0)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def droplet_body(name: str = "vps-1", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "region": "nyc1",
        "size": "s-1vcpu-1gb",
        "image": "ubuntu-22-04-x64",
        "tags": ["order-service"],
        "monitoring": True,
    }
    body.update(overrides)
    return body


async def create(
    client: httpx.AsyncClient, *, headers: dict[str, str] = AUTH, **overrides: Any
) -> dict[str, Any]:
    response = await client.post("/v2/droplets", json=droplet_body(**overrides), headers=headers)
    assert response.status_code == 202, response.text
    return response.json()


async def stats(client: httpx.AsyncClient) -> dict[str, Any]:
    return (await client.get("/_fake/stats")).json()


async def booted(
    client: httpx.AsyncClient,
    clock: ManualClock,
    *,
    headers: dict[str, str] = AUTH,
    **overrides: Any,
) -> dict[str, Any]:
    """A droplet that finished booting (status active)."""
    droplet = (await create(client, headers=headers, **overrides))["droplet"]
    clock.advance(2.0)
    return droplet


async def post_action(
    client: httpx.AsyncClient,
    droplet_id: int,
    kind: str,
    *,
    headers: dict[str, str] = AUTH,
    **extra: Any,
) -> httpx.Response:
    return await client.post(
        f"/v2/droplets/{droplet_id}/actions", json={"type": kind, **extra}, headers=headers
    )


async def get_status(
    client: httpx.AsyncClient, droplet_id: int, *, headers: dict[str, str] = AUTH
) -> str:
    response = await client.get(f"/v2/droplets/{droplet_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["droplet"]["status"]
