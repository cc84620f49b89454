"""Server actions end to end: the engine against the fake DigitalOcean over real HTTP.

Each test counts what the fake saw (`/_fake/stats`): the droplet's state and
how many DO actions of each type were started.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from mocks.catalog_service.data import IMAGE_DEBIAN_ID
from mocks.digitalocean import FakeConfig
from mocks.digitalocean import create_app as create_fake_do
from order_service.actions.writer import SYSTEM, enqueue_action
from order_service.db import create_sessionmaker
from order_service.orders.states import ActionType
from tests.conftest import INTERNAL, auth
from tests.integration.test_provisioning import (
    configure,
    paid_order,
    running_service,
    stats,
    wait_for,
)
from tests.servers import serve

DONE = {"COMPLETED", "FAILED", "CANCELED"}


@pytest.fixture(scope="module")
async def fake_do_server() -> AsyncIterator[tuple[str, Any]]:
    app = create_fake_do(FakeConfig(boot_seconds=0.2, action_seconds=0.2))
    async with serve(app) as url:
        yield url, app


@pytest.fixture
async def fake_do(fake_do_server: tuple[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    url, _ = fake_do_server
    async with httpx.AsyncClient(base_url=url) as control:
        (await control.post("/_fake/reset")).raise_for_status()
        yield control


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def service(
    database: Any,
    fake_do_server: tuple[str, Any],
    fake_do: httpx.AsyncClient,
    catalog_app: Any,
    clean_db: None,
    overrides: dict[str, Any],
) -> AsyncIterator[httpx.AsyncClient]:
    async with running_service(database.url, fake_do_server[0], catalog_app, **overrides) as client:
        yield client


async def active_order(service: httpx.AsyncClient) -> tuple[str, int]:
    order_id = await paid_order(service)
    order = await wait_for(service, order_id, {"ACTIVE", "FAILED"})
    assert order["status"] == "ACTIVE", order["provisioningTask"]
    return order_id, int(order["provisioningTask"]["dropletId"])


async def act(service: httpx.AsyncClient, order_id: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await service.post(
        f"/api/v1/orders/{order_id}/actions", json=body, headers=auth("prov-user")
    )
    assert response.status_code == 202, response.text
    return await wait_action(service, order_id, response.json()["data"]["id"])


async def wait_action(
    service: httpx.AsyncClient, order_id: str, action_id: str, within: float = 15
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        response = await service.get(
            f"/api/v1/internal/orders/{order_id}/actions/{action_id}", headers=INTERNAL
        )
        action = response.json()["data"]
        if action["status"] in DONE:
            return action
        assert time.monotonic() < deadline, f"action stuck: {action}"
        await asyncio.sleep(0.05)


async def droplet(fake_do: httpx.AsyncClient, droplet_id: int) -> httpx.Response:
    return await fake_do.get(
        f"/v2/droplets/{droplet_id}", headers={"Authorization": "Bearer fake-do-token"}
    )


async def order(service: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    response = await service.get(f"/api/v1/internal/orders/{order_id}", headers=INTERNAL)
    return response.json()["data"]


async def test_every_kind_completes_with_the_droplet_in_its_end_state(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient
) -> None:
    order_id, droplet_id = await active_order(service)

    for kind, end in [
        ("SHUTDOWN", "off"),
        ("POWER_ON", "active"),
        ("POWER_OFF", "off"),
        ("POWER_ON", "active"),
        ("REBOOT", "active"),
    ]:
        action = await act(service, order_id, {"type": kind})
        assert (action["status"], action["errorCode"]) == ("COMPLETED", None), action
        assert action["startedAt"] and action["completedAt"]
        assert (await droplet(fake_do, droplet_id)).json()["droplet"]["status"] == end
        task = (await order(service, order_id))["provisioningTask"]
        assert task["dropletStatus"] == end, kind

    counted = (await stats(fake_do))["actions"]
    # The fake DO's stats list every action type it models, resize (v1.2) included.
    assert counted == {
        "reboot": 1,
        "shutdown": 1,
        "power_off": 1,
        "power_on": 2,
        "rebuild": 0,
        "resize": 0,
    }
    history = await service.get(f"/api/v1/orders/{order_id}/actions", headers=auth("prov-user"))
    assert [a["type"] for a in history.json()["data"]] == [
        "REBOOT", "POWER_ON", "POWER_OFF", "POWER_ON", "SHUTDOWN"
    ]  # fmt: skip


async def test_an_end_state_that_already_holds_sends_nothing(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient
) -> None:
    order_id, _ = await active_order(service)

    action = await act(service, order_id, {"type": "POWER_ON"})

    assert action["status"] == "COMPLETED"
    do = await stats(fake_do)
    assert do["by_route"]["post_action"] == 0
    assert sum(do["actions"].values()) == 0


async def test_pending_event_422s_are_waited_out(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient
) -> None:
    order_id, _ = await active_order(service)
    await configure(fake_do, action_422_pending=2)

    action = await act(service, order_id, {"type": "REBOOT"})

    assert action["status"] == "COMPLETED", action
    do = await stats(fake_do)
    assert do["actions_pending_event"] == 2
    assert do["actions"]["reboot"] == 1


async def test_an_errored_do_action_fails_with_dos_words(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient
) -> None:
    order_id, _ = await active_order(service)
    await configure(fake_do, action_errored_next={"reboot": 1})

    action = await act(service, order_id, {"type": "REBOOT"})

    assert (action["status"], action["errorCode"]) == ("FAILED", "ACTION_FAILED")
    assert "errored" in action["errorMessage"] and "reboot" in action["errorMessage"]
    assert (await stats(fake_do))["actions_errored"]["reboot"] == 1


@pytest.mark.parametrize("overrides", [{"action_timeout": "PT0.6S"}])
async def test_an_action_not_done_in_time_fails_with_action_timeout(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient
) -> None:
    order_id, _ = await active_order(service)
    await configure(fake_do, action_seconds=30)

    action = await act(service, order_id, {"type": "REBOOT"})

    assert (action["status"], action["errorCode"]) == ("FAILED", "ACTION_TIMEOUT")
    assert "0.6s" in action["errorMessage"]


async def test_rebuild_gives_the_order_its_new_image(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient
) -> None:
    order_id, droplet_id = await active_order(service)

    action = await act(service, order_id, {"type": "REBUILD", "imageId": IMAGE_DEBIAN_ID})

    assert action["status"] == "COMPLETED", action
    after = await order(service, order_id)
    assert (after["imageId"], after["imageName"]) == (IMAGE_DEBIAN_ID, "Debian 12")
    assert after["provisioningTask"]["doImage"] == "debian-12-x64"
    assert after["provisioningTask"]["dropletStatus"] == "active"
    seen = (await droplet(fake_do, droplet_id)).json()["droplet"]
    assert seen["image"]["slug"] == "debian-12-x64"
    assert (await stats(fake_do))["actions"]["rebuild"] == 1


async def system_action(engine: AsyncEngine, order_id: str, kind: ActionType) -> str:
    async with create_sessionmaker(engine)() as session, session.begin():
        row = await enqueue_action(session, uuid.UUID(order_id), kind, requested_by=SYSTEM)
    return str(row["id"])


async def test_destroy_deletes_the_droplet_until_do_answers_404(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    order_id, droplet_id = await active_order(service)

    action_id = await system_action(engine, order_id, ActionType.DESTROY)
    action = await wait_action(service, order_id, action_id)

    assert action["status"] == "COMPLETED", action
    assert (await droplet(fake_do, droplet_id)).status_code == 404
    assert (await stats(fake_do))["deletes"] == 1
    assert (await order(service, order_id))["provisioningTask"]["dropletStatus"] == "destroyed"


async def test_destroy_of_an_order_without_a_droplet_completes_at_once(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await configure(fake_do, create_422_permanent=True)
    order_id = await paid_order(service)
    assert (await wait_for(service, order_id, {"ACTIVE", "FAILED"}))["status"] == "FAILED"

    action = await wait_action(
        service, order_id, await system_action(engine, order_id, ActionType.DESTROY)
    )

    assert action["status"] == "COMPLETED"
    assert (await stats(fake_do))["by_route"]["delete_droplet"] == 0


async def test_retry_of_an_errored_droplet_destroys_it_and_ends_with_one_droplet(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient
) -> None:
    await configure(fake_do, errored_status_images=["ubuntu-22-04-x64"])
    order_id = await paid_order(service)
    failed = await wait_for(service, order_id, {"ACTIVE", "FAILED"})
    assert failed["status"] == "FAILED"
    old_id = int(failed["provisioningTask"]["dropletId"])
    assert failed["provisioningTask"]["dropletStatus"] == "errored"
    await configure(fake_do, errored_status_images=[])

    retried = await service.post(
        f"/api/v1/internal/orders/{order_id}/retry-provisioning", headers=INTERNAL
    )
    assert retried.status_code == 200, retried.text
    active = await wait_for(service, order_id, {"ACTIVE", "FAILED"})

    assert active["status"] == "ACTIVE", active["provisioningTask"]
    assert int(active["provisioningTask"]["dropletId"]) != old_id
    assert (await droplet(fake_do, old_id)).status_code == 404
    do = await stats(fake_do)
    assert do["deletes"] == 1
    assert do["droplets"] == 2
    assert do["droplets_per_tag"][f"order-{order_id}"] == 1


async def test_a_droplet_tagged_for_the_order_before_payment_is_adopted(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient
) -> None:
    from tests.helpers import create_order, pay

    created = await create_order(service, "prov-user")
    order_id = created["id"]
    seeded = await fake_do.post(
        "/_fake/droplets",
        json={"tags": ["order-service", f"order-{order_id}"], "status": "active", "region": "sgp1"},
    )
    assert seeded.status_code == 201, seeded.text
    assert (await pay(service, order_id)).status_code == 200

    active = await wait_for(service, order_id, {"ACTIVE", "FAILED"})

    assert active["status"] == "ACTIVE"
    assert int(active["provisioningTask"]["dropletId"]) == seeded.json()["droplet"]["id"]
    do = await stats(fake_do)
    assert do["by_route"]["create"] == 0
    assert do["droplets_per_tag"][f"order-{order_id}"] == 1


async def test_an_action_request_whose_answer_was_lost_is_checked_before_resending(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient
) -> None:
    order_id, _ = await active_order(service)
    # A 500 on the action request: it may have started, so the client does not
    # retry it blindly; the engine reads the droplet's action list first.
    await configure(fake_do, fail_next={"post_action": 1})

    action = await act(service, order_id, {"type": "REBOOT"})

    assert action["status"] == "COMPLETED", action
    do = await stats(fake_do)
    assert do["by_route"]["list_actions"] >= 1
    assert do["actions"]["reboot"] == 1


async def test_actions_of_one_order_run_one_at_a_time_oldest_first(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    order_id, droplet_id = await active_order(service)

    first = await system_action(engine, order_id, ActionType.POWER_OFF)
    # A user's action queued behind it (a system POWER_ON would supersede the
    # pending POWER_OFF instead: see test_action_writer.py).
    async with create_sessionmaker(engine)() as session, session.begin():
        row = await enqueue_action(
            session, uuid.UUID(order_id), ActionType.REBOOT, requested_by="user:prov-user"
        )
    second = str(row["id"])
    done = [await wait_action(service, order_id, a) for a in (first, second)]

    assert [a["status"] for a in done] == ["COMPLETED", "COMPLETED"]
    assert done[0]["completedAt"] <= done[1]["startedAt"]
    assert (await droplet(fake_do, droplet_id)).json()["droplet"]["status"] == "active"
    do = await stats(fake_do)
    assert (do["actions"]["power_off"], do["actions"]["reboot"]) == (1, 1)
    assert do["actions_pending_event"] == 0  # never two at once on the droplet


async def test_a_droplet_busy_past_the_clients_retries_is_tried_again_later(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    from sqlalchemy import select

    from order_service.actions.models import ServerAction

    order_id, _ = await active_order(service)
    # Five 422 "pending event" answers use up the client's five attempts: the
    # engine postpones the action and, next time, reads DO's action list first.
    await configure(fake_do, action_422_pending=5)

    action = await act(service, order_id, {"type": "REBOOT"})

    assert action["status"] == "COMPLETED", action
    do = await stats(fake_do)
    assert (do["actions_pending_event"], do["actions"]["reboot"]) == (5, 1)
    async with engine.connect() as connection:
        attempts = (
            await connection.execute(
                select(ServerAction.__table__.c.attempts).where(
                    ServerAction.__table__.c.id == uuid.UUID(action["id"])
                )
            )
        ).scalar_one()
    assert attempts == 2  # sent, refused as busy, sent again after next_attempt_at


@pytest.mark.parametrize("overrides", [{"shutdown_grace": "PT0.5S"}])
async def test_a_suspensions_shutdown_gives_way_to_power_off_after_the_grace(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """SPEC 9: SHUTDOWN, then POWER_OFF only if not off within the grace (not ACTION_TIMEOUT)."""
    from datetime import timedelta

    from order_service.db import utcnow

    order_id, droplet_id = await active_order(service)
    await configure(fake_do, action_seconds=2.5)  # the graceful shutdown takes too long
    async with create_sessionmaker(engine)() as session, session.begin():
        oid = uuid.UUID(order_id)
        shutdown = await enqueue_action(session, oid, ActionType.SHUTDOWN, requested_by=SYSTEM)
        power_off = await enqueue_action(
            session,
            oid,
            ActionType.POWER_OFF,
            requested_by=SYSTEM,
            not_before=utcnow() + timedelta(seconds=0.5),
        )
    first = await wait_action(service, order_id, str(shutdown["id"]), within=10)
    assert (first["status"], first["errorCode"]) == ("FAILED", "ACTION_TIMEOUT"), first
    second = await wait_action(service, order_id, str(power_off["id"]), within=15)
    assert second["status"] == "COMPLETED", second
    assert (await droplet(fake_do, droplet_id)).json()["droplet"]["status"] == "off"


async def test_after_a_suspension_whose_shutdown_completed_the_customer_sees_no_failed_power_off(
    service: httpx.AsyncClient, fake_do: httpx.AsyncClient
) -> None:
    """SPEC 3 and 9: the hard POWER_OFF held back after a completed SHUTDOWN never reached DO,
    so the customer's action list shows it CANCELED (why: SUPERSEDED), not a failure."""
    order_id, droplet_id = await active_order(service)
    suspended = await service.post(
        f"/api/v1/internal/orders/{order_id}/suspend", json={"reason": "abuse"}, headers=INTERNAL
    )
    assert suspended.status_code == 200, suspended.text

    deadline = time.monotonic() + 15
    while True:
        response = await service.get(
            f"/api/v1/orders/{order_id}/actions", headers=auth("prov-user")
        )
        assert response.status_code == 200, response.text
        listed = list(reversed(response.json()["data"]))  # oldest first
        if all(a["status"] in DONE for a in listed):
            break
        assert time.monotonic() < deadline, f"actions stuck: {listed}"
        await asyncio.sleep(0.05)

    assert [(a["type"], a["status"], a["errorCode"]) for a in listed] == [
        ("SHUTDOWN", "COMPLETED", None),
        ("POWER_OFF", "CANCELED", "SUPERSEDED"),
    ]
    assert not [a for a in listed if a["status"] == "FAILED"]
    assert "SHUTDOWN" in listed[1]["errorMessage"]
    assert listed[1]["completedAt"] is not None
    assert (await droplet(fake_do, droplet_id)).json()["droplet"]["status"] == "off"
    assert (await stats(fake_do))["actions"]["power_off"] == 0
    # The relay makes events visible in the feed a moment after their commit.
    deadline = time.monotonic() + 10
    while True:
        feed = await service.get(
            "/api/v1/internal/events", params={"orderId": order_id, "limit": 500}, headers=INTERNAL
        )
        types = [event["type"] for event in feed.json()["data"]]
        if "action.canceled" in types or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert "action.canceled" in types and "action.failed" not in types
