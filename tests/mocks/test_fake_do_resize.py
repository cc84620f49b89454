"""The fake DigitalOcean API's resize action: powered off only, disks never shrink."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.mocks.fake_do import (
    AUTH,
    ClientFactory,
    ManualClock,
    create,
    get_status,
    post_action,
    stats,
)

PENDING_EVENT = {"id": "unprocessable_entity", "message": "Droplet already has a pending event."}


async def off_droplet(
    client: httpx.AsyncClient, clock: ManualClock, size: str = "s-1vcpu-1gb", **extra: Any
) -> int:
    droplet_id = (await create(client, size=size, **extra))["droplet"]["id"]
    clock.advance(2.0)
    assert (await post_action(client, droplet_id, "shutdown")).status_code == 201
    clock.advance(1.0)
    assert await get_status(client, droplet_id) == "off"
    return droplet_id


async def droplet(client: httpx.AsyncClient, droplet_id: int) -> dict[str, Any]:
    return (await client.get(f"/v2/droplets/{droplet_id}", headers=AUTH)).json()["droplet"]


async def resize(
    client: httpx.AsyncClient, droplet_id: int, size: str, **extra: Any
) -> httpx.Response:
    return await post_action(client, droplet_id, "resize", size=size, **extra)


def shape(body: dict[str, Any]) -> tuple[str, int, int, int, int]:
    """(size_slug, memory, vcpus, disk, size.disk) of a droplet's JSON."""
    return (body["size_slug"], body["memory"], body["vcpus"], body["disk"], body["size"]["disk"])


async def test_resize_with_disk_grows_everything(
    make_client: ClientFactory, clock: ManualClock
) -> None:
    client = make_client()
    droplet_id = await off_droplet(client, clock)
    started = await resize(client, droplet_id, "s-1vcpu-2gb", disk=True)
    assert started.status_code == 201
    action = started.json()["action"]
    assert (action["type"], action["status"]) == ("resize", "in-progress")

    # Locked while it runs, like any other action.
    busy = await post_action(client, droplet_id, "power_on")
    assert busy.status_code == 422 and busy.json() == PENDING_EVENT
    assert shape(await droplet(client, droplet_id)) == ("s-1vcpu-1gb", 1024, 1, 25, 25)

    clock.advance(1.0)
    done = (await client.get(f"/v2/actions/{action['id']}", headers=AUTH)).json()["action"]
    assert done["status"] == "completed"
    after = await droplet(client, droplet_id)
    assert shape(after) == ("s-1vcpu-2gb", 2048, 1, 50, 50)
    assert after["status"] == "off"  # DO leaves it off; power_on is the client's job
    counters = await stats(client)
    assert counters["actions"]["resize"] == 1 and counters["actions_errored"]["resize"] == 0


async def test_resize_without_disk_changes_cpu_and_ram_only(
    make_client: ClientFactory, clock: ManualClock
) -> None:
    client = make_client()
    droplet_id = await off_droplet(client, clock)
    assert (await resize(client, droplet_id, "s-1vcpu-2gb")).status_code == 201  # disk false
    clock.advance(1.0)
    # The disk stays 25 GB; the size object shows the size's own disk.
    assert shape(await droplet(client, droplet_id)) == ("s-1vcpu-2gb", 2048, 1, 25, 50)
    # Now back down to a 25 GB size is allowed (its disk holds the droplet's)...
    assert (await resize(client, droplet_id, "c-2", disk=False)).status_code == 201
    clock.advance(1.0)
    assert shape(await droplet(client, droplet_id)) == ("c-2", 4096, 2, 25, 25)


async def test_a_disk_never_shrinks(make_client: ClientFactory, clock: ManualClock) -> None:
    client = make_client()
    droplet_id = await off_droplet(client, clock, size="s-1vcpu-2gb")
    for disk in (True, False):
        refused = await resize(client, droplet_id, "s-1vcpu-1gb", disk=disk)
        assert refused.status_code == 422
        assert "smaller disk" in refused.json()["message"]
    # After a disk resize even the old size is too small.
    await resize(client, droplet_id, "s-2vcpu-4gb", disk=True)
    clock.advance(1.0)
    assert (await resize(client, droplet_id, "s-1vcpu-2gb")).status_code == 422
    counters = await stats(client)
    assert counters["actions"]["resize"] == 1 and counters["unprocessable"] == 3


async def test_resize_needs_the_droplet_off(make_client: ClientFactory, clock: ManualClock) -> None:
    client = make_client()
    droplet_id = (await create(client))["droplet"]["id"]
    clock.advance(2.0)
    refused = await resize(client, droplet_id, "s-1vcpu-2gb", disk=True)
    assert refused.status_code == 422
    assert refused.json()["message"] == (
        "Droplet is currently on. Please power it off to run this event."
    )
    assert (await stats(client))["actions"]["resize"] == 0


async def test_resize_to_a_size_the_region_does_not_offer(
    make_client: ClientFactory, clock: ManualClock
) -> None:
    client = make_client()
    droplet_id = await off_droplet(client, clock, region="blr1")
    refused = await resize(client, droplet_id, "s-4vcpu-8gb", disk=True)
    assert refused.status_code == 422
    assert refused.json()["message"] == "Size is not available in this region."


async def test_resize_errored_next_keeps_the_size(
    make_client: ClientFactory, clock: ManualClock
) -> None:
    client = make_client()
    droplet_id = await off_droplet(client, clock)
    config = await client.post("/_fake/config", json={"action_errored_next": {"resize": 1}})
    assert config.json()["action_errored_next"]["resize"] == 1
    action = (await resize(client, droplet_id, "s-2vcpu-4gb", disk=True)).json()["action"]
    clock.advance(1.0)
    ended = (await client.get(f"/v2/actions/{action['id']}", headers=AUTH)).json()["action"]
    assert ended["status"] == "errored"
    after = await droplet(client, droplet_id)
    assert shape(after) == ("s-1vcpu-1gb", 1024, 1, 25, 25) and after["status"] == "off"
    assert (await stats(client))["actions_errored"]["resize"] == 1


@pytest.mark.parametrize(
    "body",
    [
        {"type": "resize"},
        {"type": "resize", "size": ""},
        {"type": "resize", "size": 5},
        {"type": "resize", "size": "s-1vcpu-2gb", "disk": "yes"},
    ],
)
async def test_resize_body_validation(
    make_client: ClientFactory, clock: ManualClock, body: dict[str, Any]
) -> None:
    client = make_client()
    droplet_id = await off_droplet(client, clock)
    response = await client.post(f"/v2/droplets/{droplet_id}/actions", json=body, headers=AUTH)
    assert response.status_code == 422
    assert (await stats(client))["actions"]["resize"] == 0


async def test_resize_to_an_unknown_size_is_accepted(
    make_client: ClientFactory, clock: ManualClock
) -> None:
    client = make_client()
    droplet_id = await off_droplet(client, clock)
    assert (await resize(client, droplet_id, "s-4vcpu-16gb", disk=True)).status_code == 201
    clock.advance(1.0)
    # Unknown slugs get plausible values guessed from the slug, as on create.
    assert shape(await droplet(client, droplet_id)) == ("s-4vcpu-16gb", 16384, 4, 400, 400)
