"""From order to first login (SPEC section 14), with the provisioner against the fake DO.

A PASSWORD order's droplet carries the password in its cloud-init user_data (read
back from the fake's `GET /_fake/droplets/{id}`); the owner reads it once ACTIVE,
until CREDENTIALS_TTL, then it is erased. An SSH_KEYS order's keys are uploaded to
the account once, whatever the number of orders. Neither the password nor the
user_data reaches a log line, an event, a webhook, the order JSON or the ops API.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from order_service import clock
from order_service.access import credentials
from order_service.access.models import OrderCredential
from tests.conftest import INTERNAL, auth
from tests.helpers import assert_error, order_body, pay
from tests.integration.test_operability import every_log_record, rendered
from tests.integration.test_provisioning import (
    TERMINAL,
    fake_do,  # noqa: F401  (fixture)
    fake_do_server,  # noqa: F401  (fixture)
    provisioning_overrides,  # noqa: F401  (fixture)
    running_service,
    service,  # noqa: F401  (fixture)
    stats,
    wait_for,
)
from tests.integration.test_ssh_keys_api import added, ed25519_line
from tests.servers import serve
from tests.webhooks import Receiver, eventually, register, whole_feed

ORDERS = "/api/v1/orders"


async def fake_droplet(control: httpx.AsyncClient, droplet_id: str) -> dict[str, Any]:
    response = await control.get(f"/_fake/droplets/{droplet_id}")
    assert response.status_code == 200, response.text
    return response.json()


async def ordered(client: httpx.AsyncClient, user: str, **fields: Any) -> str:
    created = await client.post(ORDERS, json=order_body(**fields), headers=auth(user))
    assert created.status_code == 201, created.text
    order_id = created.json()["data"]["id"]
    assert (await pay(client, order_id)).status_code == 200
    return order_id


async def stored_password(engine: AsyncEngine, order_id: str) -> str | None:
    async with engine.connect() as connection:
        statement = select(OrderCredential.password_encrypted).where(
            OrderCredential.order_id == uuid.UUID(order_id)
        )
        return (await connection.execute(statement)).scalar_one_or_none()


async def test_password_order_from_payment_to_first_login_and_erasure(
    service: httpx.AsyncClient,  # noqa: F811
    fake_do: httpx.AsyncClient,  # noqa: F811
    engine: AsyncEngine,
) -> None:
    order_id = await ordered(service, "ani", hostname="Shop.Example.com", region="blr1")
    order = await wait_for(service, order_id, TERMINAL)
    assert order["status"] == "ACTIVE", order["provisioningTask"]
    task = order["provisioningTask"]
    assert (task["dropletName"], task["doRegion"]) == ("shop.example.com", "blr1")

    path = f"{ORDERS}/{order_id}/credentials"
    read = await service.get(path, headers=auth("ani"))
    assert read.status_code == 200, read.text
    assert read.headers["cache-control"] == "no-store"
    data = read.json()["data"]
    password = data["password"]
    assert len(password) >= 20 and data["username"] == "root" and data["sshKeys"] == []
    assert data["ipv4Public"] == task["ipv4Public"]
    assert_error(await service.get(path, headers=auth("budi")), 403, "ORDER_ACCESS_DENIED")

    # DO received it as cloud-init, and nothing but that: no keys, DO e-mails nobody.
    droplet = await fake_droplet(fake_do, task["dropletId"])
    assert droplet["ssh_keys"] == []
    user_data = droplet["user_data"]
    assert user_data.startswith("#cloud-config\n") and "ssh_pwauth: true" in user_data
    assert f'password: "{password}"' in user_data and f"root:{password}" in user_data
    assert droplet["droplet"]["region"]["slug"] == "blr1"
    assert droplet["droplet"]["name"] == "shop.example.com"
    # Stored encrypted, never as it is.
    encrypted = await stored_password(engine, order_id)
    assert encrypted and password not in encrypted

    # Within the TTL (P3D) it reads the same; past it, it is erased and gone for good.
    clock.advance(timedelta(days=2, hours=23))
    assert (await service.get(path, headers=auth("ani"))).json()["data"]["password"] == password
    clock.advance(timedelta(hours=2))
    error = assert_error(await service.get(path, headers=auth("ani")), 410, "CREDENTIALS_EXPIRED")
    assert "expiredAt" in error["details"]
    assert await stored_password(engine, order_id) is None
    assert_error(await service.get(path, headers=auth("ani")), 410, "CREDENTIALS_EXPIRED")


async def test_the_purge_erases_only_what_is_due_and_termination_erases_at_once(
    service: httpx.AsyncClient,  # noqa: F811
    engine: AsyncEngine,
) -> None:
    due, fresh, ended = [await ordered(service, "ani") for _ in range(3)]
    for order_id in (due, fresh, ended):
        assert (await wait_for(service, order_id, TERMINAL))["status"] == "ACTIVE"
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    assert await credentials.purge_expired(sessionmaker, timedelta(days=3)) == 0
    terminated = await service.post(
        f"/api/v1/internal/orders/{ended}/terminate", json={}, headers=INTERNAL
    )
    assert terminated.status_code == 200, terminated.text
    assert await stored_password(engine, ended) is None
    # `due` became ACTIVE four days ago (moved back by hand): past P3D, the others not.
    async with engine.begin() as connection:
        await connection.execute(
            OrderCredential.__table__.update()
            .where(OrderCredential.order_id == uuid.UUID(due))
            .values(active_since=clock.now() - timedelta(days=4))
        )
    assert await credentials.purge_expired(sessionmaker, timedelta(days=3)) == 1
    assert await stored_password(engine, due) is None
    assert await stored_password(engine, fresh) is not None


async def test_ssh_key_orders_upload_each_key_once_per_account(
    service: httpx.AsyncClient,  # noqa: F811
    fake_do: httpx.AsyncClient,  # noqa: F811
) -> None:
    laptop = await added(service, "ani", name="laptop")
    desktop = await added(service, "ani", name="desktop")
    first = await ordered(service, "ani", sshKeyIds=[laptop["id"], desktop["id"]])
    assert (await wait_for(service, first, TERMINAL))["status"] == "ACTIVE"
    after_first = await stats(fake_do)
    second = await ordered(service, "ani", sshKeyIds=[laptop["id"]])
    third = await ordered(service, "ani", sshKeyIds=[desktop["id"], laptop["id"]])
    orders = [await wait_for(service, i, TERMINAL) for i in (second, third)]
    assert all(order["status"] == "ACTIVE" for order in orders)

    do = await stats(fake_do)
    assert do["keys_created"] == 2
    assert do["accounts"]["fake-do-token"]["keys_created"] == 2
    # The later orders asked DO nothing about keys: they were remembered.
    assert do["by_route"]["get_key"] == after_first["by_route"]["get_key"] == 2
    assert do["by_route"]["create_key"] == after_first["by_route"]["create_key"] == 2
    for order_id, keys in ((second, [laptop]), (third, [desktop, laptop])):
        order = next(o for o in orders if o["id"] == order_id)
        droplet = await fake_droplet(fake_do, order["provisioningTask"]["dropletId"])
        assert droplet["ssh_keys"] == [key["fingerprint"] for key in keys]
        assert droplet["user_data"] is None
        credentials_read = await service.get(
            f"{ORDERS}/{order_id}/credentials", headers=auth("ani")
        )
        assert credentials_read.json()["data"]["password"] is None
        assert credentials_read.json()["data"]["sshKeys"] == [
            {"name": key["name"], "fingerprint": key["fingerprint"]} for key in keys
        ]


async def test_a_key_already_in_the_account_is_present_and_a_retry_stays_in_the_region(
    service: httpx.AsyncClient,  # noqa: F811
    fake_do: httpx.AsyncClient,  # noqa: F811
) -> None:
    line = ed25519_line()
    key = await added(service, "ani", key=line)
    # Someone put the key in the account by hand: DO's answer makes it present.
    by_hand = await fake_do.post(
        "/v2/account/keys",
        json={"name": "by hand", "public_key": line},
        headers={"Authorization": "Bearer fake-do-token"},
    )
    assert by_hand.status_code == 201, by_hand.text
    (await fake_do.post("/_fake/config", json={"errored_images": ["ubuntu-22-04-x64"]}))
    order_id = await ordered(service, "ani", region="ams3", sshKeyIds=[key["id"]])
    failed = await wait_for(service, order_id, TERMINAL)
    assert failed["status"] == "FAILED"
    (await fake_do.post("/_fake/config", json={"errored_images": []}))
    retried = await service.post(
        f"/api/v1/internal/orders/{order_id}/retry-provisioning", json={}, headers=INTERNAL
    )
    assert retried.status_code == 200, retried.text
    order = await wait_for(service, order_id, {"ACTIVE"})
    assert order["provisioningTask"]["doRegion"] == "ams3"
    droplet = await fake_droplet(fake_do, order["provisioningTask"]["dropletId"])
    assert droplet["droplet"]["region"]["slug"] == "ams3"
    do = await stats(fake_do)
    assert do["keys_created"] == 1  # the one by hand: found, never uploaded, not for the retry
    assert (do["by_route"]["get_key"], do["by_route"]["create_key"]) == (1, 1)


async def test_the_password_and_user_data_are_in_no_log_event_webhook_or_ops_answer(
    database: Any,
    catalog_app: Any,
    clean_db: None,
    fake_do_server: tuple[str, Any],  # noqa: F811
    fake_do: httpx.AsyncClient,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    hooks = Receiver()
    answers: list[str] = []  # every response body but the one credentials read

    with every_log_record() as records:
        async with (
            serve(hooks) as hook_url,
            running_service(
                database.url, fake_do_server[0], catalog_app, webhook_retry_schedule="PT0.1S"
            ) as client,
        ):
            await register(client, f"{hook_url}/hook")
            created = await client.post(ORDERS, json=order_body(), headers=auth("ani"))
            order_id = created.json()["data"]["id"]
            answers.append(created.text)
            answers.append((await pay(client, order_id)).text)
            order = await wait_for(client, order_id, {"ACTIVE"})
            read = await client.get(f"{ORDERS}/{order_id}/credentials", headers=auth("ani"))
            password = read.json()["data"]["password"]
            await eventually(
                lambda: any(r.status == 200 for r in hooks.of_type("order.active")),
                what="order.active delivered",
            )
            for path, headers in (
                (f"{ORDERS}/{order_id}", auth("ani")),
                (ORDERS, auth("ani")),
                (f"/api/v1/internal/orders/{order_id}", INTERNAL),
                ("/api/v1/internal/orders", INTERNAL),
            ):
                answers.append((await client.get(path, headers=headers)).text)
            feed = await whole_feed(client)
    droplet = await fake_droplet(fake_do, order["provisioningTask"]["dropletId"])
    user_data = droplet["user_data"]
    assert password and password in user_data  # the droplet really got it
    secrets = {
        "password": password,
        "user_data's password line": f"root:{password}",
        "user_data's chpasswd section": "chpasswd",
    }

    assert any(e["type"] == "order.active" for e in feed) and hooks.requests
    texts = {
        "the event feed": json.dumps(feed),
        **{f"webhook {n}": r.body for n, r in enumerate(hooks.requests)},
        **{f"answer {n}": text for n, text in enumerate(answers)},
        **{f"log record {n}": rendered(r) for n, r in enumerate(records)},
        "caplog": caplog.text + "".join(repr(r.__dict__) for r in caplog.records),
    }
    assert any(r.levelno == logging.DEBUG for r in records)  # DEBUG was really captured
    for where, text in texts.items():
        for what, secret in secrets.items():
            assert secret not in text, f"the {what} leaked into {where}: {text[:500]}"
