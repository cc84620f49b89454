"""SIGKILL between an SSH key's upload and the droplet's create (SPEC sections 7, 14).

Real `order-service serve` processes, the fake DigitalOcean over HTTP answering
300 ms after it handled a request: the service is killed as soon as the fake has
made the first key, before the service heard so (and so before any create). A
second process finishes the work: one droplet per order, each key created once in
the account, every droplet with every key of its order.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import INTERNAL, auth
from tests.helpers import order_body
from tests.integration.test_crash_safety import (
    ServiceProcess,
    assert_one_droplet_per_order,
    neighbours,  # noqa: F401  (fixture)
    processes,  # noqa: F401  (fixture)
    service_env,  # noqa: F401  (fixture)
    wait_all_active,
)
from tests.integration.test_ssh_keys_api import ed25519_line

pytestmark = pytest.mark.slow

ORDERS = 3


async def order_with_keys(url: str, count: int) -> tuple[list[str], list[str]]:
    """Two keys of one user, `count` paid orders with both; (order ids, fingerprints)."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        fingerprints = []
        key_ids = []
        for name in ("laptop", "desktop"):
            added = await client.post(
                "/api/v1/ssh-keys",
                json={"name": name, "publicKey": ed25519_line()},
                headers=auth("crash-keys"),
            )
            assert added.status_code == 201, added.text
            key_ids.append(added.json()["data"]["id"])
            fingerprints.append(added.json()["data"]["fingerprint"])
        ids = []
        for _ in range(count):
            created = await client.post(
                "/api/v1/orders", json=order_body(sshKeyIds=key_ids), headers=auth("crash-keys")
            )
            assert created.status_code == 201, created.text
            ids.append(created.json()["data"]["id"])
        paid = await asyncio.gather(
            *(
                client.post(
                    f"/api/v1/internal/orders/{order_id}/payment-status",
                    json={"status": "PAID"},
                    headers=INTERNAL,
                )
                for order_id in ids
            )
        )
        assert all(response.status_code == 200 for response in paid)
        return ids, fingerprints


async def wait_for_kind(control: httpx.AsyncClient, kind: str, within: float = 20) -> None:
    """Until the fake handled a request of `kind` (logged before its 300 ms answer)."""
    deadline = time.monotonic() + within
    while True:
        log = (await control.get("/_fake/requests", params={"since": 0})).json()["requests"]
        if any(entry["kind"] == kind for entry in log):
            return
        assert time.monotonic() < deadline, f"no {kind} request in time"
        await asyncio.sleep(0.01)


async def test_sigkill_between_key_upload_and_create_makes_one_droplet_and_each_key_once(
    service_env: dict[str, str],  # noqa: F811
    neighbours: tuple[str, str, httpx.AsyncClient],  # noqa: F811
    processes: list[ServiceProcess],  # noqa: F811
    tmp_path: Path,
) -> None:
    control = neighbours[2]
    first = ServiceProcess(service_env, tmp_path / "first.log")
    processes.append(first)
    await first.wait_ready()
    ids, fingerprints = await order_with_keys(first.url, ORDERS)

    await wait_for_kind(control, "create_key")
    first.kill()  # DO made the key; the service never heard, nor sent a create
    at_kill: dict[str, Any] = (await control.get("/_fake/stats")).json()
    assert at_kill["keys_created"] == 1 and at_kill["by_route"]["create"] == 0, at_kill

    second = ServiceProcess(service_env, tmp_path / "second.log")
    processes.append(second)
    await second.wait_ready()
    await wait_all_active(second.url, ids)

    await assert_one_droplet_per_order(control, ids)
    stats = (await control.get("/_fake/stats")).json()
    assert stats["keys_created"] == 2  # each key once in the account, the killed one too
    assert stats["by_route"]["create_key"] == 2  # found by its fingerprint, not sent again
    assert stats["accounts"]["fake-do-token"]["keys_created"] == 2
    async with httpx.AsyncClient(base_url=second.url, headers=INTERNAL) as client:
        for order_id in ids:
            order = (await client.get(f"/api/v1/internal/orders/{order_id}")).json()["data"]
            droplet_id = order["provisioningTask"]["dropletId"]
            droplet = (await control.get(f"/_fake/droplets/{droplet_id}")).json()
            assert droplet["ssh_keys"] == fingerprints and droplet["user_data"] is None
    assert second.terminate()
