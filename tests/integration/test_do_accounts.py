"""Several DO accounts (SPEC section 13): the API, placement by capacity, a full or
broken account never failing an order, every call with the droplet's own token.

The fake DigitalOcean runs over real HTTP with two tokens, each its own account
(`fake-do-token` is `default`'s, `second-token` an account ops add).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.conftest import INTERNAL
from tests.helpers import assert_error
from tests.integration.test_provisioning import (
    TERMINAL,
    configure,
    fake_do,  # noqa: F401  (fixture)
    fake_do_server,  # noqa: F401  (fixture)
    paid_order,
    running_service,
    stats,
    wait_for,
)

SECOND_TOKEN = "second-token-0123456789"
SECRETS_KEY = Fernet.generate_key().decode()
ACCOUNTS = "/api/v1/internal/do-accounts"


@pytest.fixture
def account_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def service(
    database: Any,
    fake_do_server: tuple[str, Any],  # noqa: F811
    fake_do: httpx.AsyncClient,  # noqa: F811
    catalog_app: Any,
    clean_db: None,
    account_overrides: dict[str, Any],
) -> AsyncIterator[httpx.AsyncClient]:
    await configure(fake_do, tokens=["fake-do-token", SECOND_TOKEN])
    values = {"secrets_key": SECRETS_KEY, **account_overrides}
    async with running_service(database.url, fake_do_server[0], catalog_app, **values) as client:
        yield client


async def accounts(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    listing = await client.get(ACCOUNTS, headers=INTERNAL)
    assert listing.status_code == 200, listing.text
    return {account["name"]: account for account in listing.json()["data"]}


async def add_second(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    created = await client.post(
        ACCOUNTS, json={"name": "second", "token": SECOND_TOKEN, **body}, headers=INTERNAL
    )
    assert created.status_code == 201, created.text
    return created.json()["data"]


async def wait_until(check: Any, within: float = 15) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def task_of(client: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/internal/orders/{order_id}", headers=INTERNAL)
    return response.json()["data"]


# ------------------------------------------------------------------ the API


async def test_an_account_is_added_checked_and_its_token_never_shown(
    service: httpx.AsyncClient,
    fake_do: httpx.AsyncClient,  # noqa: F811
) -> None:
    await configure(fake_do, droplet_limits={SECOND_TOKEN: 7})
    created = await service.post(
        ACCOUNTS, json={"name": "second", "token": SECOND_TOKEN, "reserve": 2}, headers=INTERNAL
    )

    assert created.status_code == 201, created.text
    account = created.json()["data"]
    assert SECOND_TOKEN not in created.text
    assert account["tokenHint"] == SECOND_TOKEN[-4:]
    assert (account["name"], account["health"], account["dropletLimit"]) == ("second", "HEALTHY", 7)
    assert (account["droplets"], account["creating"], account["free"]) == (0, 0, 5)
    listed = await accounts(service)
    assert set(listed) == {"default", "second"}
    assert SECOND_TOKEN not in (await service.get(ACCOUNTS, headers=INTERNAL)).text
    one = await service.get(f"{ACCOUNTS}/{account['id']}", headers=INTERNAL)
    assert one.json()["data"]["reserve"] == 2


async def test_a_token_do_refuses_is_400_and_nothing_is_stored(
    service: httpx.AsyncClient,
) -> None:
    refused = await service.post(
        ACCOUNTS, json={"name": "bad", "token": "not-a-real-token"}, headers=INTERNAL
    )

    assert_error(refused, 400, "INVALID_DO_TOKEN")
    assert set(await accounts(service)) == {"default"}


@pytest.mark.parametrize("name", ["default", "second"])
async def test_a_taken_name_is_409(service: httpx.AsyncClient, name: str) -> None:
    await add_second(service)
    again = await service.post(
        ACCOUNTS, json={"name": name, "token": SECOND_TOKEN}, headers=INTERNAL
    )
    assert_error(again, 409, "DO_ACCOUNT_EXISTS")


@pytest.mark.parametrize("name", ["", "UPPER", "under_score", "x" * 41, "sp ace"])
async def test_a_bad_name_is_400(service: httpx.AsyncClient, name: str) -> None:
    refused = await service.post(
        ACCOUNTS, json={"name": name, "token": SECOND_TOKEN}, headers=INTERNAL
    )
    assert_error(refused, 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("account_overrides", [{"secrets_key": None}])
async def test_without_secrets_key_accounts_cannot_be_added(service: httpx.AsyncClient) -> None:
    refused = await service.post(
        ACCOUNTS, json={"name": "second", "token": SECOND_TOKEN}, headers=INTERNAL
    )
    assert_error(refused, 409, "SECRETS_KEY_REQUIRED")


async def test_default_takes_no_token_and_cannot_be_removed(service: httpx.AsyncClient) -> None:
    default = (await accounts(service))["default"]
    url = f"{ACCOUNTS}/{default['id']}"

    assert_error(
        await service.patch(url, json={"token": SECOND_TOKEN}, headers=INTERNAL),
        400,
        "VALIDATION_ERROR",
    )
    assert_error(await service.delete(url, headers=INTERNAL), 400, "VALIDATION_ERROR")
    changed = await service.patch(url, json={"reserve": 3, "isActive": False}, headers=INTERNAL)
    assert changed.status_code == 200
    assert (changed.json()["data"]["reserve"], changed.json()["data"]["isActive"]) == (3, False)


@pytest.mark.parametrize("path", ["/not-a-uuid", "/00000000-0000-4000-8000-000000000000"])
async def test_an_unknown_account_is_404(service: httpx.AsyncClient, path: str) -> None:
    for response in (
        await service.get(ACCOUNTS + path, headers=INTERNAL),
        await service.patch(ACCOUNTS + path, json={"reserve": 1}, headers=INTERNAL),
        await service.delete(ACCOUNTS + path, headers=INTERNAL),
        await service.post(ACCOUNTS + path + "/check", headers=INTERNAL),
    ):
        assert_error(response, 404, "DO_ACCOUNT_NOT_FOUND")


async def test_an_account_holding_droplets_cannot_be_removed_until_they_are_destroyed(
    service: httpx.AsyncClient,
) -> None:
    second = await add_second(service)
    default = (await accounts(service))["default"]
    await service.patch(f"{ACCOUNTS}/{default['id']}", json={"isActive": False}, headers=INTERNAL)
    order_id = await paid_order(service)
    assert (await wait_for(service, order_id, TERMINAL))["status"] == "ACTIVE"

    in_use = await service.delete(f"{ACCOUNTS}/{second['id']}", headers=INTERNAL)
    assert_error(in_use, 409, "DO_ACCOUNT_IN_USE")

    terminated = await service.post(
        f"/api/v1/internal/orders/{order_id}/terminate", headers=INTERNAL
    )
    assert terminated.status_code == 200, terminated.text

    async def destroyed() -> bool:
        task = (await task_of(service, order_id))["provisioningTask"]
        return task["dropletStatus"] == "destroyed"

    await wait_until(destroyed)
    gone = await service.delete(f"{ACCOUNTS}/{second['id']}", headers=INTERNAL)
    assert gone.status_code == 204
    assert set(await accounts(service)) == {"default"}


# ------------------------------------------------------------------ placement


async def test_five_orders_fill_two_and_three_slots_the_sixth_waits_then_takes_a_new_one(
    service: httpx.AsyncClient,
    fake_do: httpx.AsyncClient,  # noqa: F811
) -> None:
    await configure(fake_do, droplet_limits={"fake-do-token": 2, SECOND_TOKEN: 3})
    await add_second(service)
    ids = [await paid_order(service) for _ in range(6)]

    async def settled() -> list[dict[str, Any]] | None:
        orders = [await task_of(service, order_id) for order_id in ids]
        active = [o for o in orders if o["status"] == "ACTIVE"]
        waiting = [
            o for o in orders if o["provisioningTask"]["errorCode"] == "WAITING_FOR_CAPACITY"
        ]
        return orders if len(active) == 5 and len(waiting) == 1 else None

    orders = await wait_until(settled, within=30)
    by_account = [o["provisioningTask"]["doAccount"] for o in orders if o["status"] == "ACTIVE"]
    assert sorted(by_account) == ["default"] * 2 + ["second"] * 3
    waiting = next(o for o in orders if o["status"] != "ACTIVE")
    assert waiting["status"] == "PROVISIONING"
    assert [h["newStatus"] for h in waiting["statusHistory"]].count("WAITING_FOR_CAPACITY") == 1
    listed = await accounts(service)
    assert (listed["default"]["droplets"], listed["default"]["free"]) == (2, 0)
    assert (listed["second"]["droplets"], listed["second"]["free"]) == (3, 0)
    per_account = (await stats(fake_do))["accounts"]
    assert per_account["fake-do-token"]["droplets"] == 2
    assert per_account[SECOND_TOKEN]["droplets"] == 3

    # A larger limit at DO, seen by a check: the sixth order takes the new slot.
    (
        await fake_do.post(f"/_fake/accounts/{SECOND_TOKEN}", json={"droplet_limit": 4})
    ).raise_for_status()
    checked = await service.post(f"{ACCOUNTS}/{listed['second']['id']}/check", headers=INTERNAL)
    assert checked.json()["data"]["dropletLimit"] == 4
    done = await wait_for(service, waiting["id"], TERMINAL)
    assert done["status"] == "ACTIVE" and done["provisioningTask"]["doAccount"] == "second"
    assert (await stats(fake_do))["max_droplets_per_order_tag"] == 1


async def test_dos_droplet_limit_422_marks_the_account_full_and_places_the_order_again(
    service: httpx.AsyncClient,
    fake_do: httpx.AsyncClient,  # noqa: F811
) -> None:
    # Our view says default has room (DO said 10,000 at its check); DO now says full.
    # `second` starts disabled, so the first placement can only be default: with both
    # empty, the tie goes to the account with more budget left this minute, which
    # depended on which account the checker had asked last (flaky on a loaded machine).
    second = await add_second(service, isActive=False)
    await configure(fake_do, droplet_limits={"fake-do-token": 0, SECOND_TOKEN: 5})
    order_ids = [await paid_order(service) for _ in range(3)]

    async def all_waiting_and_default_full() -> bool:
        # Waiting recorded (not only the account marked full): a slot that frees between
        # "no room" and the wait's commit is seen at the wait's retry, not at once.
        orders = [
            (await service.get(f"/api/v1/internal/orders/{i}", headers=INTERNAL)).json()["data"]
            for i in order_ids
        ]
        waiting = all(o["provisioningTask"]["errorCode"] == "WAITING_FOR_CAPACITY" for o in orders)
        return waiting and (await accounts(service))["default"]["dropletLimit"] == 0

    await wait_until(all_waiting_and_default_full)
    enabled = await service.patch(
        f"{ACCOUNTS}/{second['id']}", json={"isActive": True}, headers=INTERNAL
    )
    assert enabled.status_code == 200, enabled.text
    done = [await wait_for(service, order_id, TERMINAL) for order_id in order_ids]

    assert [order["status"] for order in done] == ["ACTIVE"] * 3
    assert {order["provisioningTask"]["doAccount"] for order in done} == {"second"}
    listed = await accounts(service)
    assert listed["default"]["dropletLimit"] == 0 and listed["default"]["free"] == 0
    assert (await stats(fake_do))["max_droplets_per_order_tag"] == 1


async def test_actions_and_the_destroy_go_with_the_droplets_own_token(
    service: httpx.AsyncClient,
    fake_do: httpx.AsyncClient,  # noqa: F811
) -> None:
    await configure(fake_do, droplet_limits={"fake-do-token": 0}, action_seconds=0.1)
    await add_second(service)
    order_id = await paid_order(service)
    order = await wait_for(service, order_id, TERMINAL)
    assert order["provisioningTask"]["doAccount"] == "second"
    droplet_id = order["provisioningTask"]["dropletId"]
    since = (await fake_do.get("/_fake/requests")).json()["next"]

    rebooted = await service.post(
        f"/api/v1/internal/orders/{order_id}/actions", json={"type": "REBOOT"}, headers=INTERNAL
    )
    assert rebooted.status_code == 202, rebooted.text

    async def rebooted_done() -> bool:
        action = await service.get(
            f"/api/v1/internal/orders/{order_id}/actions/{rebooted.json()['data']['id']}",
            headers=INTERNAL,
        )
        return action.json()["data"]["status"] == "COMPLETED"

    await wait_until(rebooted_done)
    await service.post(f"/api/v1/internal/orders/{order_id}/terminate", headers=INTERNAL)

    async def destroyed() -> bool:
        task = (await task_of(service, order_id))["provisioningTask"]
        return task["dropletStatus"] == "destroyed"

    await wait_until(destroyed)
    log = (await fake_do.get("/_fake/requests", params={"since": since})).json()["requests"]
    about_droplet = [r for r in log if f"/v2/droplets/{droplet_id}" in r["path"]]
    assert {r["method"] for r in about_droplet} >= {"POST", "DELETE", "GET"}
    assert {r["account"] for r in about_droplet} == {SECOND_TOKEN}
    assert {r["token_hint"] for r in about_droplet} == {SECOND_TOKEN[-4:]}


async def test_an_account_revoked_mid_storm_fails_no_order(
    service: httpx.AsyncClient,
    fake_do: httpx.AsyncClient,  # noqa: F811
) -> None:
    await configure(fake_do, boot_seconds=1.0, token_accounts={"rotated-token-9876": SECOND_TOKEN})
    second = await add_second(service)
    ids = [await paid_order(service) for _ in range(8)]

    async def both_used() -> bool:
        per_account = (await stats(fake_do))["accounts"]
        return all(
            per_account.get(name, {}).get("droplets") for name in ("fake-do-token", SECOND_TOKEN)
        )

    await wait_until(both_used)
    # Its token is revoked while its droplets boot: the account goes UNHEALTHY
    # (one event), its droplets wait, new work goes to default; nothing FAILS.
    await configure(fake_do, tokens=["fake-do-token", "rotated-token-9876"])
    more = [await paid_order(service) for _ in range(4)]

    async def unhealthy() -> bool:
        return (await accounts(service))["second"]["health"] == "UNHEALTHY"

    await wait_until(unhealthy)
    await asyncio.sleep(1.5)
    statuses = {(await task_of(service, i))["status"] for i in ids + more}
    assert "FAILED" not in statuses
    # Ops give the account its new token: HEALTHY again, its droplets are followed.
    patched = await service.patch(
        f"{ACCOUNTS}/{second['id']}", json={"token": "rotated-token-9876"}, headers=INTERNAL
    )
    assert patched.status_code == 200 and patched.json()["data"]["health"] == "HEALTHY"
    done = [await wait_for(service, order_id, TERMINAL, within=30) for order_id in ids + more]
    assert {order["status"] for order in done} == {"ACTIVE"}
    assert (await stats(fake_do))["max_droplets_per_order_tag"] == 1
    feed = await service.get("/api/v1/internal/events", params={"limit": 500}, headers=INTERNAL)
    types = [event["type"] for event in feed.json()["data"]]
    assert types.count("do_account.unhealthy") == 1 and types.count("do_account.healthy") == 1
    unhealthy_event = next(e for e in feed.json()["data"] if e["type"] == "do_account.unhealthy")
    assert unhealthy_event["data"]["account"]["name"] == "second"
    assert unhealthy_event["orderId"] is None


async def test_the_token_appears_in_no_log_line_response_or_event(
    service: httpx.AsyncClient,
    fake_do: httpx.AsyncClient,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    second = await add_second(service)
    seen.append((await service.get(ACCOUNTS, headers=INTERNAL)).text)
    order_id = await paid_order(service)
    seen.append((await wait_for(service, order_id, TERMINAL)).__repr__())
    # A 401 on it (its token revoked at DO), a check, a refused replacement.
    await configure(fake_do, tokens=["fake-do-token"])
    seen.append((await service.post(f"{ACCOUNTS}/{second['id']}/check", headers=INTERNAL)).text)
    seen.append(
        (
            await service.patch(
                f"{ACCOUNTS}/{second['id']}", json={"token": "xx-" + SECOND_TOKEN}, headers=INTERNAL
            )
        ).text
    )
    seen.append(
        (await service.get("/api/v1/internal/events", params={"limit": 500}, headers=INTERNAL)).text
    )

    assert SECOND_TOKEN not in caplog.text
    assert "fake-do-token" not in caplog.text
    for text in seen:
        assert SECOND_TOKEN not in text


async def test_rotate_secrets_moves_every_token_to_the_new_key(
    service: httpx.AsyncClient,
    database: Any,
    engine: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from sqlalchemy import select

    from order_service.accounts.models import DoAccount
    from order_service.cli import main
    from order_service.secret_box import InvalidToken, SecretBox

    await add_second(service)
    table = DoAccount.__table__
    query = select(table.c.token_encrypted).where(table.c.name == "second")
    async with engine.connect() as connection:
        before = (await connection.execute(query)).scalar_one()
    new_key = Fernet.generate_key().decode()
    for name, value in {
        "DATABASE_URL": database.url,
        "INTERNAL_API_KEY": "k",
        "JWT_ALGORITHM": "HS256",
        "JWT_SECRET": "s",
        "SECRETS_KEY": f"{new_key},{SECRETS_KEY}",
    }.items():
        monkeypatch.setenv(name, value)

    # The command runs its own event loop (asyncio.run), so in a thread of its own.
    assert await asyncio.to_thread(main, ["rotate-secrets"]) == 0

    assert "do_accounts: 1 secret(s)" in capsys.readouterr().out
    async with engine.connect() as connection:
        after = (await connection.execute(query)).scalar_one()
    assert after != before
    # The old key can go: the new one alone opens it; the old one alone no longer does.
    assert SecretBox([new_key.encode()]).decrypt(after) == SECOND_TOKEN
    with pytest.raises(InvalidToken):
        SecretBox([SECRETS_KEY.encode()]).decrypt(after)
