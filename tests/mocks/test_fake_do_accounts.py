"""The fake DigitalOcean API's accounts: namespaces, droplet limits, revoked tokens,
GET /v2/account, per-account stats, the request log and the new CLI flags."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mocks.digitalocean import FakeConfig, FakeState
from tests.mocks.fake_do import (
    AUTH,
    TOKEN,
    ClientFactory,
    ManualClock,
    bearer,
    booted,
    create,
    droplet_body,
    post_action,
    stats,
)

A, B = bearer("token-a"), bearer("token-b")
LIMIT_422 = {
    "id": "unprocessable_entity",
    "message": "creating this/these droplet(s) will exceed your droplet limit",
}


def two_accounts(make_client: ClientFactory, **config: Any) -> httpx.AsyncClient:
    return make_client(tokens=["token-a", "token-b"], **config)


async def try_create(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.post("/v2/droplets", json=droplet_body(), headers=headers)


# -- namespaces ------------------------------------------------------------------------


async def test_another_accounts_droplet_is_404_everywhere(
    make_client: ClientFactory, clock: ManualClock
) -> None:
    client = two_accounts(make_client)
    created = await create(client, headers=A, tags=["order-1"])
    droplet_id = created["droplet"]["id"]
    action_id = created["links"]["actions"][0]["id"]
    clock.advance(2.0)

    for method, path, body in [
        ("GET", f"/v2/droplets/{droplet_id}", None),
        ("GET", f"/v2/droplets/{droplet_id}/actions", None),
        ("POST", f"/v2/droplets/{droplet_id}/actions", {"type": "reboot"}),
        ("GET", f"/v2/actions/{action_id}", None),
        ("DELETE", f"/v2/droplets/{droplet_id}", None),
    ]:
        response = await client.request(method, path, json=body, headers=B)
        assert response.status_code == 404, (method, path)
        assert response.json()["id"] == "not_found"
        assert "ratelimit-remaining" in response.headers  # still an admitted request
    for query in ("", "?tag_name=order-1"):
        listing = (await client.get(f"/v2/droplets{query}", headers=B)).json()
        assert listing["droplets"] == [] and listing["meta"] == {"total": 0}

    # The owner still has it, untouched by the other account's attempts.
    assert (await client.get(f"/v2/droplets/{droplet_id}", headers=A)).status_code == 200
    mine = (await client.get("/v2/droplets?tag_name=order-1", headers=A)).json()
    assert [d["id"] for d in mine["droplets"]] == [droplet_id]
    counters = await stats(client)
    assert (counters["actions"]["reboot"], counters["deletes"]) == (0, 0)


async def test_ids_stay_unique_across_accounts(make_client: ClientFactory) -> None:
    client = two_accounts(make_client)
    first = await create(client, headers=A)
    second = await create(client, headers=B)
    assert second["droplet"]["id"] > first["droplet"]["id"]
    assert second["links"]["actions"][0]["id"] > first["links"]["actions"][0]["id"]


async def test_tokens_mapped_to_one_account_share_it_but_not_rate_windows(
    make_client: ClientFactory,
) -> None:
    client = make_client(
        tokens=["old", "new", "solo"],
        token_accounts={"old": "shop", "new": "shop"},
        per_minute=2,
    )
    droplet_id = (await create(client, headers=bearer("old")))["droplet"]["id"]
    assert (await client.get(f"/v2/droplets/{droplet_id}", headers=bearer("new"))).is_success
    assert (
        await client.get(f"/v2/droplets/{droplet_id}", headers=bearer("solo"))
    ).status_code == 404
    # "old" uses up its two requests of the minute; "new" has its own window.
    assert (await client.get("/v2/droplets", headers=bearer("old"))).status_code == 200
    assert (await client.get("/v2/droplets", headers=bearer("old"))).status_code == 429
    assert (await client.get("/v2/droplets", headers=bearer("new"))).status_code == 200
    accounts = (await stats(client))["accounts"]
    assert set(accounts) == {"shop", "solo"}
    assert accounts["shop"]["requests"] == 5 and accounts["shop"]["rate_limited"] == 1
    assert accounts["shop"]["droplets"] == 1 and accounts["solo"]["requests"] == 1


async def test_a_revoked_token_is_401_and_its_account_waits_for_it(
    make_client: ClientFactory,
) -> None:
    client = make_client(tokens=["token-a", "token-b"], token_accounts={"token-a": "acme"})
    droplet_id = (await create(client, headers=A))["droplet"]["id"]
    await client.post("/_fake/config", json={"tokens": ["token-b"]})

    revoked = await client.get(f"/v2/droplets/{droplet_id}", headers=A)
    assert revoked.status_code == 401
    assert revoked.json() == {"id": "unauthorized", "message": "Unable to authenticate you"}
    assert (await stats(client))["accounts"]["acme"]["droplets"] == 1  # still there

    # A new token for the same account reaches it; so does the old one re-added.
    await client.post(
        "/_fake/config",
        json={"tokens": ["token-b", "rotated"], "token_accounts": {"rotated": "acme"}},
    )
    assert (await client.get(f"/v2/droplets/{droplet_id}", headers=bearer("rotated"))).is_success
    await client.post(
        "/_fake/config",
        json={"tokens": ["token-a"], "token_accounts": {"token-a": "acme"}},
    )
    assert (await client.get(f"/v2/droplets/{droplet_id}", headers=A)).is_success


async def test_in_process_calls_without_an_account_see_everything() -> None:
    fake = FakeState(FakeConfig(tokens=["token-a", "token-b"], boot_seconds=0))
    theirs = fake.create_droplet(droplet_body(), "http://do", account="token-b")["droplet"]
    mine = fake.create_droplet(droplet_body(), "http://do")["droplet"]  # the first token's
    assert fake.droplet_details(mine["id"])["account"] == "token-a"
    listed = fake.list_droplets(tag_name=None, page=1, per_page=20, base_url="")
    assert [d["id"] for d in listed["droplets"]] == [theirs["id"], mine["id"]]
    assert fake.get_droplet(theirs["id"])["droplet"]["id"] == theirs["id"]


# -- the droplet limit ------------------------------------------------------------------


async def test_create_past_the_limit_is_422_until_a_droplet_goes(
    make_client: ClientFactory,
) -> None:
    client = two_accounts(make_client, droplet_limit=2)
    first = await create(client, headers=A)
    await create(client, headers=A)
    refused = await try_create(client, A)
    assert refused.status_code == 422 and refused.json() == LIMIT_422
    assert (await try_create(client, B)).status_code == 202  # B has its own room

    counters = await stats(client)
    assert counters["droplets"] == 3 and counters["unprocessable"] == 1
    assert counters["accounts"]["token-a"] == {
        "droplets": 2,
        "droplet_limit": 2,
        "requests": 3,
        "rate_limited": 0,
        "keys_created": 0,
    }

    deleted = await client.delete(f"/v2/droplets/{first['droplet']['id']}", headers=A)
    assert deleted.status_code == 204
    assert (await try_create(client, A)).status_code == 202


async def test_invisible_droplets_count_and_errored_away_ones_do_not(
    make_client: ClientFactory, clock: ManualClock
) -> None:
    client = make_client(droplet_limit=1, consistency_delay_s=5.0, errored_images=["bad-img"])
    await create(client, image="bad-img")
    assert (await try_create(client, AUTH)).json() == LIMIT_422  # not visible, still counted
    clock.advance(2.0)  # the build errored: the droplet disappeared
    assert (await try_create(client, AUTH)).status_code == 202


async def test_per_account_limits_from_config_and_the_control_route(
    make_client: ClientFactory,
) -> None:
    client = two_accounts(make_client, droplet_limits={"token-b": 0})
    assert (await try_create(client, B)).json() == LIMIT_422
    assert (await try_create(client, A)).status_code == 202  # the default 10,000

    changed = await client.post("/_fake/accounts/token-a", json={"droplet_limit": 1})
    assert changed.status_code == 200
    assert changed.json()["account"] == {
        "name": "token-a",
        "droplets": 1,
        "droplet_limit": 1,
        "requests": 1,
        "rate_limited": 0,
        "keys_created": 0,
    }
    assert (await try_create(client, A)).json() == LIMIT_422
    config = (await client.get("/_fake/config")).json()
    assert config["droplet_limits"] == {"token-b": 0, "token-a": 1}

    # null drops the override; reset restores the constructed config.
    await client.post("/_fake/accounts/token-a", json={"droplet_limit": None})
    assert (await try_create(client, A)).status_code == 202
    await client.post("/_fake/reset")
    assert (await client.get("/_fake/config")).json()["droplet_limits"] == {"token-b": 0}


@pytest.mark.parametrize(
    "body", [{"droplet_limit": -1}, {"droplet_limit": "3"}, {"droplet_limit": True}, {"x": 1}]
)
async def test_account_control_validation(make_client: ClientFactory, body: Any) -> None:
    client = make_client()
    response = await client.post("/_fake/accounts/fake-do-token", json=body)
    assert response.status_code == 422
    assert (await client.get("/_fake/config")).json()["droplet_limits"] == {}


async def test_limit_config_validation(make_client: ClientFactory) -> None:
    client = make_client()
    for bad in (
        {"droplet_limit": -1},
        {"droplet_limits": {"a": -2}},
        {"token_accounts": {"t": ""}},
    ):
        assert (await client.post("/_fake/config", json=bad)).status_code == 422, bad


# -- seeding ------------------------------------------------------------------------------


async def test_seeded_droplets_go_to_the_named_or_the_first_tokens_account(
    make_client: ClientFactory,
) -> None:
    client = two_accounts(make_client, droplet_limit=1)
    theirs = (await client.post("/_fake/droplets", json={"account": "token-b"})).json()
    mine = (await client.post("/_fake/droplets", json={})).json()
    theirs_id, mine_id = theirs["droplet"]["id"], mine["droplet"]["id"]
    assert (await client.get(f"/v2/droplets/{theirs_id}", headers=A)).status_code == 404
    assert (await client.get(f"/v2/droplets/{theirs_id}", headers=B)).is_success
    assert (await client.get(f"/v2/droplets/{mine_id}", headers=A)).is_success
    # Seeding ignores the limit, but the seeded droplets count against it.
    await client.post("/_fake/droplets", json={"account": "token-b"})
    accounts = (await stats(client))["accounts"]
    assert accounts["token-b"]["droplets"] == 2
    assert (await try_create(client, B)).json() == LIMIT_422
    for bad in ({"account": ""}, {"account": 7}):
        assert (await client.post("/_fake/droplets", json=bad)).status_code == 422


# -- GET /v2/account -------------------------------------------------------------------------


async def test_get_account_reports_the_callers_account(make_client: ClientFactory) -> None:
    client = two_accounts(make_client, droplet_limits={"token-b": 25})
    response = await client.get("/v2/account", headers=B)
    assert response.status_code == 200 and "ratelimit-remaining" in response.headers
    account = response.json()["account"]
    assert set(account) == {
        "droplet_limit",
        "floating_ip_limit",
        "volume_limit",
        "email",
        "uuid",
        "email_verified",
        "status",
        "status_message",
        "team",
    }
    assert account["droplet_limit"] == 25
    assert (account["floating_ip_limit"], account["volume_limit"]) == (3, 10)
    assert (account["status"], account["status_message"], account["email_verified"]) == (
        "active",
        "",
        True,
    )
    assert set(account["team"]) == {"uuid", "name"}
    other = (await client.get("/v2/account", headers=A)).json()["account"]
    assert other["droplet_limit"] == 10_000
    assert other["uuid"] != account["uuid"]
    # Stable: the same account reports the same uuid every time.
    assert (await client.get("/v2/account", headers=B)).json()["account"] == account
    assert (await stats(client))["by_route"]["account"] == 3


async def test_get_account_is_authenticated_and_failable(make_client: ClientFactory) -> None:
    client = make_client()
    assert (await client.get("/v2/account")).status_code == 401
    await client.post("/_fake/config", json={"fail_next": {"account": 1}, "fail_status": 503})
    assert (await client.get("/v2/account", headers=AUTH)).status_code == 503
    assert (await client.get("/v2/account", headers=AUTH)).status_code == 200
    counters = await stats(client)
    assert (counters["server_errors"], counters["unauthorized"]) == (1, 1)


# -- the request log --------------------------------------------------------------------------


async def test_request_log_records_who_called_what(
    make_client: ClientFactory, clock: ManualClock
) -> None:
    client = make_client(tokens=["secret-token-1234"], token_accounts={"secret-token-1234": "acme"})
    me = bearer("secret-token-1234")
    droplet_id = (await booted(client, clock, headers=me))["id"]
    await post_action(client, droplet_id, "reboot", headers=me)
    await client.get("/v2/nowhere", headers=me)
    await client.get("/v2/droplets", headers=bearer("wrong-9999"))
    await client.get("/_fake/stats")  # control routes are not logged

    log = (await client.get("/_fake/requests")).json()
    assert [(e["method"], e["path"], e["kind"], e["status"]) for e in log["requests"]] == [
        ("POST", "/v2/droplets", "create", 202),
        ("POST", f"/v2/droplets/{droplet_id}/actions", "post_action", 201),
        ("GET", "/v2/nowhere", None, 404),
        ("GET", "/v2/droplets", "list", 401),
    ]
    assert [(e["account"], e["token_hint"]) for e in log["requests"]] == [
        ("acme", "1234"),
        ("acme", "1234"),
        ("acme", "1234"),
        (None, "9999"),
    ]
    seqs = [e["seq"] for e in log["requests"]]
    assert seqs == list(range(seqs[0], seqs[0] + 4)) and log["next"] == seqs[-1]
    assert "secret-token-1234" not in str(log)

    later = (await client.get(f"/_fake/requests?since={seqs[1]}")).json()
    assert [e["seq"] for e in later["requests"]] == seqs[2:]
    nothing_new = (await client.get(f"/_fake/requests?since={log['next']}")).json()
    assert nothing_new == {"requests": [], "next": log["next"]}
    assert (await client.get("/_fake/requests?since=x")).status_code == 422


async def test_request_log_is_cleared_by_reset_but_seq_keeps_growing(
    make_client: ClientFactory,
) -> None:
    client = make_client()
    await client.get("/v2/droplets", headers=AUTH)
    before = (await client.get("/_fake/requests")).json()["next"]
    await client.post("/_fake/reset")
    assert (await client.get("/_fake/requests")).json() == {"requests": [], "next": 0}
    await client.get("/v2/account", headers=AUTH)
    [entry] = (await client.get(f"/_fake/requests?since={before}")).json()["requests"]
    assert entry["seq"] > before and entry["kind"] == "account"
    assert entry["status"] == 200


async def test_request_log_is_bounded(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mocks.digitalocean.admission.REQUEST_LOG_SIZE", 5)
    client = make_client()
    for _ in range(12):
        await client.get("/v2/droplets", headers=AUTH)
    log = (await client.get("/_fake/requests")).json()
    assert [e["seq"] for e in log["requests"]] == [8, 9, 10, 11, 12]
    # A cursor older than the log starts at its oldest entry.
    assert [e["seq"] for e in (await client.get("/_fake/requests?since=2")).json()["requests"]] == [
        8,
        9,
        10,
        11,
        12,
    ]


# -- CLI --------------------------------------------------------------------------------------


def test_cli_accounts_and_droplet_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from mocks.digitalocean.__main__ import parse_args

    defaults = parse_args([])
    assert (defaults.tokens, defaults.token_accounts, defaults.droplet_limit) == (
        [TOKEN],
        {},
        10_000,
    )
    flags = parse_args(["--account", "acme=t1", "--account", "acme=t2", "--droplet-limit", "25"])
    assert flags.tokens == ["t1", "t2"]  # no default token once accounts are given
    assert flags.token_accounts == {"t1": "acme", "t2": "acme"}
    assert flags.droplet_limit == 25
    mixed = parse_args(["--token", "plain", "--account", "b=t3"])
    assert (mixed.tokens, mixed.token_accounts) == (["plain", "t3"], {"t3": "b"})

    monkeypatch.setenv("FAKE_DO_ACCOUNT", "acme=e1, other=e2")
    monkeypatch.setenv("FAKE_DO_DROPLET_LIMIT", "3")
    from_env = parse_args([])
    assert from_env.token_accounts == {"e1": "acme", "e2": "other"}
    assert (from_env.tokens, from_env.droplet_limit) == (["e1", "e2"], 3)
    assert parse_args(["--account", "x=f1"]).token_accounts == {"f1": "x"}  # the flag wins
    with pytest.raises(SystemExit):
        parse_args(["--account", "no-equals-sign"])
    monkeypatch.setenv("FAKE_DO_ACCOUNT", "=e1")
    with pytest.raises(SystemExit):
        parse_args([])
