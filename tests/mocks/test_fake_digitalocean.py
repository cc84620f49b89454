"""Tests of the fake DigitalOcean API v2 in mocks/digitalocean.

Everything time-dependent runs on a manual clock (injected into the state), so
nothing sleeps except the two tests that check the real-clock wiring. The
helpers and fixtures are shared with the other fake-DO tests (fake_do.py,
conftest.py).
"""

import asyncio
import time
from typing import Any

import httpx
import pytest

from mocks.digitalocean import FakeConfig, FakeState, create_app
from mocks.digitalocean.state import ApiError
from tests.mocks.fake_do import (
    AUTH,
    TOKEN,
    WALL_START,
    ClientFactory,
    ManualClock,
    booted,
    create,
    droplet_body,
    get_status,
    post_action,
    stats,
)

# -- lifecycle -------------------------------------------------------------------


async def test_create_new_then_active_with_addresses_on_real_clock() -> None:
    app = create_app(FakeConfig(boot_seconds=0.05))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://do") as client:
        created = await client.post("/v2/droplets", json=droplet_body(), headers=AUTH)
        assert created.status_code == 202
        body = created.json()
        droplet = body["droplet"]
        assert droplet["status"] == "new"
        assert droplet["networks"] == {"v4": [], "v6": []}
        assert droplet["features"] == ["monitoring"]
        assert droplet["created_at"].endswith("Z")
        [link] = body["links"]["actions"]
        assert link["rel"] == "create"
        assert link["href"] == f"http://do/v2/actions/{link['id']}"

        await asyncio.sleep(0.08)
        fetched = (await client.get(f"/v2/droplets/{droplet['id']}", headers=AUTH)).json()
        assert fetched["droplet"]["status"] == "active"
        public, private = fetched["droplet"]["networks"]["v4"]
        assert public["type"] == "public" and public["ip_address"].startswith("203.0.113.")
        assert private["type"] == "private" and private["ip_address"].startswith("10.")


async def test_droplet_shape_matches_do(make_client: ClientFactory) -> None:
    client = make_client()
    droplet = (await create(client, tags=["order-7", "order-service"]))["droplet"]
    assert droplet["locked"] is False
    assert isinstance(droplet["id"], int)
    assert (droplet["memory"], droplet["vcpus"], droplet["disk"]) == (1024, 1, 25)
    assert droplet["region"]["slug"] == "nyc1" and droplet["region"]["name"] == "New York 1"
    assert droplet["image"]["slug"] == "ubuntu-22-04-x64"
    assert droplet["image"]["distribution"] == "Ubuntu"
    assert isinstance(droplet["image"]["id"], int)
    assert droplet["size"]["slug"] == droplet["size_slug"] == "s-1vcpu-1gb"
    assert droplet["tags"] == ["order-7", "order-service"]
    assert droplet["vpc_uuid"]


async def test_active_addresses_are_unique(make_client: ClientFactory, clock: ManualClock) -> None:
    client = make_client(per_minute=1000)
    for i in range(300):  # more than one /24 of documentation addresses
        await create(client, name=f"vps-{i}")
    clock.advance(2.0)
    listing = (await client.get("/v2/droplets?per_page=200&page=2", headers=AUTH)).json()
    first = (await client.get("/v2/droplets?per_page=200", headers=AUTH)).json()
    droplets = first["droplets"] + listing["droplets"]
    assert len(droplets) == 300
    public = {d["networks"]["v4"][0]["ip_address"] for d in droplets}
    private = {d["networks"]["v4"][1]["ip_address"] for d in droplets}
    assert len(public) == len(private) == 300


async def test_action_goes_from_in_progress_to_completed(
    make_client: ClientFactory, clock: ManualClock
) -> None:
    client = make_client()
    created = await create(client)
    action_id = created["links"]["actions"][0]["id"]
    action = (await client.get(f"/v2/actions/{action_id}", headers=AUTH)).json()["action"]
    assert action["status"] == "in-progress"
    assert action["completed_at"] is None
    assert action["type"] == "create"
    assert action["resource_id"] == created["droplet"]["id"]
    assert action["resource_type"] == "droplet"
    assert action["region_slug"] == "nyc1"

    clock.advance(1.99)
    action = (await client.get(f"/v2/actions/{action_id}", headers=AUTH)).json()["action"]
    assert action["status"] == "in-progress"
    clock.advance(0.01)
    action = (await client.get(f"/v2/actions/{action_id}", headers=AUTH)).json()["action"]
    assert action["status"] == "completed"
    assert action["completed_at"].endswith("Z")


async def test_unknown_resources_are_do_shaped_404(make_client: ClientFactory) -> None:
    client = make_client()
    expected = {
        "id": "not_found",
        "message": "The resource you were accessing could not be found.",
    }
    for path in ("/v2/droplets/12345", "/v2/droplets/abc", "/v2/actions/9", "/v2/volumes"):
        response = await client.get(path, headers=AUTH)
        assert response.status_code == 404, path
        assert response.json() == expected
        assert "ratelimit-remaining" in response.headers


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"name": None}, "name"),
        ({"region": 3}, "region"),
        ({"size": ""}, "size"),
        ({"image": None}, "image"),
        ({"name": "bad name!"}, "hostname"),
        ({"tags": ["order 1"]}, "Tag"),
        ({"tags": "order-1"}, "tags"),
        ({"monitoring": "yes"}, "monitoring"),
    ],
)
async def test_create_validation(
    make_client: ClientFactory, overrides: dict[str, Any], fragment: str
) -> None:
    client = make_client()
    response = await client.post("/v2/droplets", json=droplet_body(**overrides), headers=AUTH)
    assert response.status_code == 422
    body = response.json()
    assert body["id"] == "unprocessable_entity"
    assert fragment in body["message"]
    assert (await stats(client))["droplets"] == 0


async def test_create_rejects_malformed_json(make_client: ClientFactory) -> None:
    client = make_client()
    response = await client.post("/v2/droplets", content=b"{nope", headers=AUTH)
    assert response.status_code == 400
    assert response.json()["id"] == "bad_request"


# -- listing -----------------------------------------------------------------------


async def test_tag_listing_paginates_with_do_links(make_client: ClientFactory) -> None:
    client = make_client()
    ids = [(await create(client, tags=["order-1"]))["droplet"]["id"] for _ in range(5)]
    await create(client, tags=["order-2"])

    page1 = (
        await client.get(
            "/v2/droplets", params={"tag_name": "order-1", "per_page": 2}, headers=AUTH
        )
    ).json()
    assert [d["id"] for d in page1["droplets"]] == ids[:2]
    assert page1["meta"] == {"total": 5}
    assert page1["links"]["pages"] == {
        "next": "http://do/v2/droplets?page=2&per_page=2&tag_name=order-1",
        "last": "http://do/v2/droplets?page=3&per_page=2&tag_name=order-1",
    }

    page2 = (await client.get(page1["links"]["pages"]["next"], headers=AUTH)).json()
    assert [d["id"] for d in page2["droplets"]] == ids[2:4]
    assert set(page2["links"]["pages"]) == {"first", "prev", "next", "last"}

    page3 = (await client.get(page2["links"]["pages"]["next"], headers=AUTH)).json()
    assert [d["id"] for d in page3["droplets"]] == ids[4:]
    assert "next" not in page3["links"]["pages"]

    single = (await client.get("/v2/droplets?tag_name=order-2", headers=AUTH)).json()
    assert single["links"] == {"pages": {}}
    assert single["meta"] == {"total": 1}

    everything = (await client.get("/v2/droplets", headers=AUTH)).json()
    assert everything["meta"]["total"] == 6
    assert [d["id"] for d in everything["droplets"]] == sorted(
        d["id"] for d in everything["droplets"]
    )

    unknown = (await client.get("/v2/droplets?tag_name=nobody", headers=AUTH)).json()
    assert unknown == {"droplets": [], "links": {"pages": {}}, "meta": {"total": 0}}


async def test_per_page_defaults_to_20_and_caps_at_200(make_client: ClientFactory) -> None:
    client = make_client()
    for i in range(25):
        await create(client, name=f"vps-{i}")
    default = (await client.get("/v2/droplets", headers=AUTH)).json()
    assert len(default["droplets"]) == 20
    assert "per_page=20" in default["links"]["pages"]["next"]
    capped = (await client.get("/v2/droplets?per_page=1000", headers=AUTH)).json()
    assert len(capped["droplets"]) == 25
    assert capped["links"]["pages"] == {}
    bad = await client.get("/v2/droplets?page=x", headers=AUTH)
    assert bad.status_code == 422


# -- auth ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}]
)
async def test_bad_or_missing_token_is_401(
    make_client: ClientFactory, headers: dict[str, str]
) -> None:
    client = make_client()
    response = await client.get("/v2/droplets", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"id": "unauthorized", "message": "Unable to authenticate you"}
    assert "ratelimit-limit" not in response.headers
    ok = await client.get("/v2/droplets", headers=AUTH)
    # The 401 did not use up any of the token's quota.
    assert ok.headers["ratelimit-remaining"] == "4999"
    assert (await stats(client))["unauthorized"] == 1


async def test_tokens_can_change_at_run_time(make_client: ClientFactory) -> None:
    client = make_client(tokens=["a", "b"])
    assert (await client.get("/v2/droplets", headers=AUTH)).status_code == 401
    assert (await client.get("/v2/droplets", headers={"Authorization": "Bearer b"})).is_success
    await client.post("/_fake/config", json={"tokens": [TOKEN]})
    assert (await client.get("/v2/droplets", headers=AUTH)).is_success


# -- rate limits ---------------------------------------------------------------


async def test_minute_limit_429_with_retry_after(
    make_client: ClientFactory, clock: ManualClock
) -> None:
    client = make_client(per_minute=5, per_hour=100)
    for i in range(5):
        response = await client.get("/v2/droplets", headers=AUTH)
        assert response.status_code == 200
        assert response.headers["ratelimit-limit"] == "100"
        assert response.headers["ratelimit-remaining"] == str(100 - i - 1)
        assert "retry-after" not in response.headers
        clock.advance(10)  # requests at t=0,10,20,30,40

    limited = await client.get("/v2/droplets/1", headers=AUTH)  # t=50
    assert limited.status_code == 429
    assert limited.json() == {"id": "too_many_requests", "message": "API Rate limit exceeded."}
    assert limited.headers["retry-after"] == "10"  # the t=0 request expires at t=60
    assert limited.headers["ratelimit-limit"] == "100"
    assert limited.headers["ratelimit-remaining"] == "95"  # the 429 was not counted
    assert limited.headers["ratelimit-reset"] == str(int(WALL_START + 3600))

    clock.advance(9.5)  # t=59.5: still full, a slot frees in 0.5 s -> rounds up to 1
    again = await client.get("/v2/droplets", headers=AUTH)
    assert again.status_code == 429
    assert again.headers["retry-after"] == "1"

    clock.advance(0.5)  # t=60: the first request left the minute window
    assert (await client.get("/v2/droplets", headers=AUTH)).status_code == 200
    counters = await stats(client)
    assert counters["rate_limited"] == 2
    assert counters["requests"] == 8


async def test_hourly_limit_429_without_retry_after(
    make_client: ClientFactory, clock: ManualClock
) -> None:
    client = make_client(per_minute=250, per_hour=3)
    for _ in range(3):
        assert (await client.get("/v2/droplets", headers=AUTH)).status_code == 200
        clock.advance(100)  # requests at t=0,100,200
    limited = await client.get("/v2/droplets", headers=AUTH)
    assert limited.status_code == 429
    assert "retry-after" not in limited.headers
    assert limited.headers["ratelimit-remaining"] == "0"
    assert limited.headers["ratelimit-reset"] == str(int(WALL_START + 3600))

    clock.advance(3600 - 300)  # t=3600: the t=0 request has expired
    ok = await client.get("/v2/droplets", headers=AUTH)
    assert ok.status_code == 200
    assert ok.headers["ratelimit-remaining"] == "0"
    assert ok.headers["ratelimit-reset"] == str(int(WALL_START + 100 + 3600))


async def test_rate_limits_are_per_token_and_skip_control_routes(
    make_client: ClientFactory,
) -> None:
    client = make_client(tokens=[TOKEN, "other"], per_minute=1)
    assert (await client.get("/v2/droplets", headers=AUTH)).status_code == 200
    assert (await client.get("/v2/droplets", headers=AUTH)).status_code == 429
    other = {"Authorization": "Bearer other"}
    assert (await client.get("/v2/droplets", headers=other)).status_code == 200
    for _ in range(3):
        assert (await client.get("/health")).json() == {"status": "ok"}
        assert (await client.get("/_fake/stats")).status_code == 200
    assert (await stats(client))["requests"] == 3


def test_rate_window_on_the_pure_state(clock: ManualClock) -> None:
    state = FakeState(FakeConfig(per_minute=2), clock=clock, wall_clock=clock.wall)
    state.admit(f"Bearer {TOKEN}", "list")
    state.admit(f"Bearer {TOKEN}", "list")
    with pytest.raises(ApiError) as caught:
        state.admit(f"Bearer {TOKEN}", "list")
    assert caught.value.status == 429
    assert caught.value.headers["retry-after"] == "60"
    clock.advance(60)
    assert state.admit(f"Bearer {TOKEN}", "list")["ratelimit-remaining"] == "4997"


# -- failure injection -----------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "method", "path"),
    [
        ("create", "POST", "/v2/droplets"),
        ("get", "GET", "/v2/droplets/{droplet_id}"),
        ("list", "GET", "/v2/droplets?tag_name=order-service"),
        ("action", "GET", "/v2/actions/{action_id}"),
    ],
)
async def test_fail_next_per_kind(
    make_client: ClientFactory, kind: str, method: str, path: str
) -> None:
    client = make_client()
    created = await create(client)
    url = path.format(
        droplet_id=created["droplet"]["id"], action_id=created["links"]["actions"][0]["id"]
    )
    config = await client.post("/_fake/config", json={"fail_next": {kind: 2}, "fail_status": 503})
    assert config.json()["fail_next"][kind] == 2

    body = droplet_body() if method == "POST" else None
    statuses = []
    for _ in range(3):
        response = await client.request(method, url, json=body, headers=AUTH)
        statuses.append(response.status_code)
        if response.status_code == 503:
            assert response.json()["id"] == "server_error"
            assert "ratelimit-remaining" in response.headers
    assert statuses == [503, 503, 202 if method == "POST" else 200]
    counters = await stats(client)
    assert counters["server_errors"] == 2
    # The injected failures were counted in the window: 1 create + 3 requests.
    assert response.headers["ratelimit-remaining"] == str(5000 - 4)
    assert (await client.get("/_fake/config")).json()["fail_next"][kind] == 0


async def test_create_422_transient_then_success(make_client: ClientFactory) -> None:
    client = make_client(create_422_transient=2)
    for _ in range(2):
        response = await client.post("/v2/droplets", json=droplet_body(), headers=AUTH)
        assert response.status_code == 422
        assert response.json() == {
            "id": "unprocessable_entity",
            "message": "Droplet creation is temporarily unavailable, please try again later.",
        }
    await create(client)
    counters = await stats(client)
    assert counters["droplets"] == 1
    assert counters["unprocessable"] == 2


async def test_create_422_permanent(make_client: ClientFactory) -> None:
    client = make_client()
    await client.post("/_fake/config", json={"create_422_permanent": True})
    for _ in range(3):
        response = await client.post("/v2/droplets", json=droplet_body(), headers=AUTH)
        assert response.status_code == 422
        assert response.json()["message"] == "You specified an invalid size for Droplet creation."
    assert (await stats(client))["droplets"] == 0


async def test_errored_image_action_errors_and_droplet_vanishes(
    make_client: ClientFactory, clock: ManualClock
) -> None:
    client = make_client(errored_images=["broken-image"])
    created = await create(client, image="broken-image", tags=["order-9"])
    droplet_id = created["droplet"]["id"]
    action_url = f"/v2/actions/{created['links']['actions'][0]['id']}"
    assert (await client.get(f"/v2/droplets/{droplet_id}", headers=AUTH)).status_code == 200

    clock.advance(2.0)
    action = (await client.get(action_url, headers=AUTH)).json()["action"]
    assert action["status"] == "errored"
    assert action["completed_at"] is not None
    assert (await client.get(f"/v2/droplets/{droplet_id}", headers=AUTH)).status_code == 404
    listing = (await client.get("/v2/droplets?tag_name=order-9", headers=AUTH)).json()
    assert listing["meta"]["total"] == 0
    counters = await stats(client)
    assert counters["droplets"] == 1
    assert counters["droplets_removed"] == 1
    assert counters["droplets_per_tag"] == {}


async def test_never_active_image_stays_new(make_client: ClientFactory, clock: ManualClock) -> None:
    client = make_client(never_active_images=["stuck-image"])
    created = await create(client, image="stuck-image")
    clock.advance(10_000)
    droplet = (await client.get(f"/v2/droplets/{created['droplet']['id']}", headers=AUTH)).json()
    assert droplet["droplet"]["status"] == "new"
    assert droplet["droplet"]["networks"]["v4"] == []
    action_url = f"/v2/actions/{created['links']['actions'][0]['id']}"
    assert (await client.get(action_url, headers=AUTH)).json()["action"]["status"] == "in-progress"


async def test_errored_status_image(make_client: ClientFactory, clock: ManualClock) -> None:
    client = make_client(errored_status_images=["weird-image"])
    created = await create(client, image="weird-image")
    clock.advance(2.0)
    droplet = (await client.get(f"/v2/droplets/{created['droplet']['id']}", headers=AUTH)).json()
    assert droplet["droplet"]["status"] == "errored"
    assert (await stats(client))["droplets_by_status"] == {"errored": 1}


async def test_latency_is_added_to_v2_responses() -> None:
    app = create_app(FakeConfig(latency_ms=40))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://do") as client:
        started = time.perf_counter()
        assert (await client.get("/v2/droplets", headers=AUTH)).status_code == 200
        assert time.perf_counter() - started >= 0.04
        started = time.perf_counter()
        await client.get("/health")
        assert time.perf_counter() - started < 0.04


async def test_eventual_consistency_delay(make_client: ClientFactory, clock: ManualClock) -> None:
    client = make_client(consistency_delay_s=1.0, boot_seconds=0.5)
    created = await create(client, tags=["order-3"])
    droplet_url = f"/v2/droplets/{created['droplet']['id']}"
    assert (await client.get(droplet_url, headers=AUTH)).status_code == 404
    listing = (await client.get("/v2/droplets?tag_name=order-3", headers=AUTH)).json()
    assert listing["meta"]["total"] == 0
    # Invisible to reads, but it exists: the stats (and the bill) already count it.
    assert (await stats(client))["droplets_per_tag"]["order-3"] == 1

    clock.advance(1.0)
    visible = await client.get(droplet_url, headers=AUTH)
    assert visible.status_code == 200
    assert visible.json()["droplet"]["status"] == "active"  # booted while invisible
    listing = (await client.get("/v2/droplets?tag_name=order-3", headers=AUTH)).json()
    assert listing["meta"]["total"] == 1


# -- stats, config, reset -----------------------------------------------------------


async def test_stats_track_droplets_per_order(make_client: ClientFactory) -> None:
    client = make_client()
    await create(client, tags=["order-1", "order-service"])
    await create(client, tags=["order-2", "order-service"])
    await create(client, tags=["order-2", "order-service"])
    await create(client, tags=["order-service"])
    await client.get("/v2/droplets/1", headers=AUTH)
    await client.get("/v2/droplets", headers=AUTH)
    counters = await stats(client)
    assert counters["droplets"] == 4
    assert counters["droplets_per_tag"] == {"order-1": 1, "order-2": 2, "order-service": 4}
    assert counters["max_droplets_per_order_tag"] == 2  # "order-service" (4) is ignored
    assert counters["orders_with_multiple_droplets"] == ["order-2"]
    assert counters["droplets_by_status"] == {"new": 4}
    assert counters["by_route"] == {
        "create": 4,
        "get": 1,
        "list": 1,
        "action": 0,
        "post_action": 0,
        "list_actions": 0,
        "delete_droplet": 0,
        # v1.2's routes
        "account": 0,
        "list_keys": 0,
        "get_key": 0,
        "create_key": 0,
        "regions": 0,
        "sizes": 0,
    }
    assert counters["requests"] == 6


async def test_config_endpoint_get_and_validation(make_client: ClientFactory) -> None:
    client = make_client()
    config = (await client.get("/_fake/config")).json()
    assert config["per_minute"] == 250 and config["per_hour"] == 5000
    no_failures = dict.fromkeys(
        (
            *("create", "get", "list", "action", "post_action", "list_actions", "delete_droplet"),
            *("account", "list_keys", "get_key", "create_key", "regions", "sizes"),  # v1.2
        ),
        0,
    )
    assert config["fail_next"] == no_failures
    await client.post("/_fake/config", json={"fail_next": {"get": 1}})
    merged = await client.post("/_fake/config", json={"fail_next": {"list": 2}})
    assert merged.json()["fail_next"] == {**no_failures, "get": 1, "list": 2}
    for bad in ({"per_minte": 5}, {"fail_status": 404}, {"fail_next": {"delete": 1}}):
        assert (await client.post("/_fake/config", json=bad)).status_code == 422, bad


async def test_reset_restores_construction_config_and_clears_everything(
    make_client: ClientFactory,
) -> None:
    client = make_client(per_minute=3)
    created = await create(client, tags=["order-1"])
    await client.post("/_fake/config", json={"per_minute": 1000, "create_422_permanent": True})
    await client.get("/v2/droplets", headers=AUTH)

    reset = await client.post("/_fake/reset")
    assert reset.status_code == 200
    config = (await client.get("/_fake/config")).json()
    assert config["per_minute"] == 3 and config["create_422_permanent"] is False
    counters = await stats(client)
    assert counters["requests"] == counters["droplets"] == 0
    assert counters["droplets_per_tag"] == {}
    droplet_url = f"/v2/droplets/{created['droplet']['id']}"
    response = await client.get(droplet_url, headers=AUTH)
    assert response.status_code == 404
    assert response.headers["ratelimit-remaining"] == "4999"  # window cleared too
    # Ids keep growing across resets so stale ids never alias new droplets.
    again = await create(client)
    assert again["droplet"]["id"] > created["droplet"]["id"]


async def test_two_apps_are_independent(make_client: ClientFactory) -> None:
    first, second = make_client(), make_client()
    await create(first)
    assert (await stats(first))["droplets"] == 1
    assert (await stats(second))["droplets"] == 0
    await first.post("/_fake/config", json={"per_minute": 1})
    assert (await second.get("/_fake/config")).json()["per_minute"] == 250


def test_cli_flags_win_over_env_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    from mocks.digitalocean.__main__ import parse_args

    monkeypatch.setenv("FAKE_DO_PORT", "4999")
    monkeypatch.setenv("FAKE_DO_BOOT_SECONDS", "0.5")
    monkeypatch.setenv("FAKE_DO_TOKEN", "a, b")
    from_env = parse_args([])
    assert (from_env.port, from_env.boot_seconds, from_env.tokens) == (4999, 0.5, ["a", "b"])
    assert (from_env.host, from_env.per_minute, from_env.per_hour) == ("127.0.0.1", 250, 5000)
    flags = parse_args(["--port", "4998", "--boot-seconds", "1", "--token", "t1", "--token", "t2"])
    assert (flags.port, flags.boot_seconds, flags.tokens) == (4998, 1.0, ["t1", "t2"])


# -- droplet actions -------------------------------------------------------------------

PENDING_EVENT = {"id": "unprocessable_entity", "message": "Droplet already has a pending event."}


@pytest.mark.parametrize(
    ("kind", "before", "after"),
    [
        ("reboot", "active", "active"),
        ("shutdown", "active", "off"),
        ("power_off", "active", "off"),
        ("power_on", "off", "active"),
        ("reboot", "off", "active"),
    ],
)
async def test_action_runs_for_action_seconds_then_sets_the_status(
    make_client: ClientFactory, clock: ManualClock, kind: str, before: str, after: str
) -> None:
    client = make_client(action_seconds=3.0)
    droplet_id = (await booted(client, clock))["id"]
    if before != "active":
        forced = await client.post(f"/_fake/droplets/{droplet_id}/status", json={"status": before})
        assert forced.status_code == 200 and forced.json()["droplet"]["status"] == before

    response = await post_action(client, droplet_id, kind)

    assert response.status_code == 201, response.text
    assert "ratelimit-remaining" in response.headers
    action = response.json()["action"]
    assert action["type"] == kind and action["status"] == "in-progress"
    assert action["resource_id"] == droplet_id and action["resource_type"] == "droplet"
    assert action["started_at"].endswith("Z") and action["completed_at"] is None
    clock.advance(2.99)
    assert await get_status(client, droplet_id) == before
    polled = (await client.get(f"/v2/actions/{action['id']}", headers=AUTH)).json()["action"]
    assert polled["status"] == "in-progress"

    clock.advance(0.01)
    polled = (await client.get(f"/v2/actions/{action['id']}", headers=AUTH)).json()["action"]
    assert polled["status"] == "completed" and polled["completed_at"].endswith("Z")
    assert await get_status(client, droplet_id) == after
    counters = await stats(client)
    assert counters["actions"] == {**dict.fromkeys(counters["actions"], 0), kind: 1}
    assert set(counters["actions"]) == {
        *("reboot", "shutdown", "power_off", "power_on", "rebuild"),
        "resize",  # v1.2
    }
    assert counters["by_route"]["post_action"] == 1
    assert counters["actions_in_progress"] == 0


async def test_rebuild_sets_the_image_and_needs_one(
    make_client: ClientFactory, clock: ManualClock
) -> None:
    client = make_client()
    droplet_id = (await booted(client, clock))["id"]

    missing = await post_action(client, droplet_id, "rebuild")
    assert missing.status_code == 422
    assert missing.json()["id"] == "unprocessable_entity"
    assert "image" in missing.json()["message"]

    response = await post_action(client, droplet_id, "rebuild", image="debian-12-x64")
    assert response.status_code == 201
    clock.advance(1.0)  # the default action_seconds
    droplet = (await client.get(f"/v2/droplets/{droplet_id}", headers=AUTH)).json()["droplet"]
    assert droplet["status"] == "active"
    assert droplet["image"]["slug"] == "debian-12-x64"
    assert droplet["image"]["distribution"] == "Debian"
    assert (await stats(client))["actions"]["rebuild"] == 1


async def test_second_action_while_one_runs_is_pending_event(
    make_client: ClientFactory, clock: ManualClock
) -> None:
    client = make_client()
    droplet_id = (await booted(client, clock))["id"]
    assert (await post_action(client, droplet_id, "reboot")).status_code == 201

    conflict = await post_action(client, droplet_id, "power_off")
    assert conflict.status_code == 422
    assert conflict.json() == PENDING_EVENT
    assert "ratelimit-remaining" in conflict.headers

    clock.advance(1.0)
    assert (await post_action(client, droplet_id, "power_off")).status_code == 201
    counters = await stats(client)
    assert counters["actions_pending_event"] == 1
    assert counters["unprocessable"] == 1
    assert counters["actions"]["reboot"] == counters["actions"]["power_off"] == 1


async def test_action_on_a_booting_droplet_is_pending_event(
    make_client: ClientFactory, clock: ManualClock
) -> None:
    client = make_client()
    droplet_id = (await create(client))["droplet"]["id"]
    response = await post_action(client, droplet_id, "reboot")
    assert response.status_code == 422 and response.json() == PENDING_EVENT
    clock.advance(2.0)
    assert (await post_action(client, droplet_id, "reboot")).status_code == 201


async def test_action_on_an_unknown_droplet_is_404(make_client: ClientFactory) -> None:
    client = make_client()
    for droplet_id in ("999", "abc"):
        response = await post_action(client, droplet_id, "reboot")  # type: ignore[arg-type]
        assert response.status_code == 404
        assert response.json()["id"] == "not_found"
        listing = await client.get(f"/v2/droplets/{droplet_id}/actions", headers=AUTH)
        assert listing.status_code == 404 and listing.json()["id"] == "not_found"


@pytest.mark.parametrize(
    ("content", "status"),
    [
        ({"type": "snapshot"}, 422),
        ({"type": None}, 422),
        ({}, 422),
        (["reboot"], 422),
        ({"type": "rebuild", "image": ""}, 422),
        (b"{not json", 400),
    ],
)
async def test_action_body_validation(
    make_client: ClientFactory, clock: ManualClock, content: Any, status: int
) -> None:
    client = make_client()
    droplet_id = (await booted(client, clock))["id"]
    url = f"/v2/droplets/{droplet_id}/actions"
    if isinstance(content, bytes):
        response = await client.post(url, content=content, headers=AUTH)
    else:
        response = await client.post(url, json=content, headers=AUTH)
    assert response.status_code == status
    assert set(response.json()) == {"id", "message"}
    assert (await stats(client))["actions"] == dict.fromkeys(
        ("reboot", "shutdown", "power_off", "power_on", "rebuild", "resize"), 0
    )


async def test_list_droplet_actions_newest_first_with_paging(
    make_client: ClientFactory, clock: ManualClock
) -> None:
    client = make_client()
    created = await create(client)
    droplet_id = created["droplet"]["id"]
    clock.advance(2.0)
    for kind in ("reboot", "shutdown"):
        assert (await post_action(client, droplet_id, kind)).status_code == 201
        clock.advance(1.0)
    url = f"/v2/droplets/{droplet_id}/actions"

    everything = (await client.get(url, headers=AUTH)).json()
    assert [a["type"] for a in everything["actions"]] == ["shutdown", "reboot", "create"]
    assert everything["actions"][-1]["id"] == created["links"]["actions"][0]["id"]
    assert {a["status"] for a in everything["actions"]} == {"completed"}
    assert everything["meta"] == {"total": 3}
    assert everything["links"] == {"pages": {}}

    first = (await client.get(f"{url}?page=1&per_page=2", headers=AUTH)).json()
    assert [a["type"] for a in first["actions"]] == ["shutdown", "reboot"]
    assert first["links"]["pages"]["next"] == f"http://do{url}?page=2&per_page=2"
    second = (await client.get(f"{url}?page=2&per_page=2", headers=AUTH)).json()
    assert [a["type"] for a in second["actions"]] == ["create"]
    beyond = (await client.get(f"{url}?page=3&per_page=2", headers=AUTH)).json()
    assert beyond["actions"] == [] and beyond["meta"] == {"total": 3}
    assert (await stats(client))["by_route"]["list_actions"] == 4


# -- failure injection for actions ----------------------------------------------------


async def test_action_errored_next_ends_errored_and_leaves_the_droplet(
    make_client: ClientFactory, clock: ManualClock
) -> None:
    client = make_client()
    droplet_id = (await booted(client, clock))["id"]
    config = await client.post("/_fake/config", json={"action_errored_next": {"shutdown": 1}})
    assert config.json()["action_errored_next"]["shutdown"] == 1
    merged = await client.post("/_fake/config", json={"action_errored_next": {"rebuild": 2}})
    assert merged.json()["action_errored_next"] == {
        "reboot": 0,
        "shutdown": 1,
        "power_off": 0,
        "power_on": 0,
        "rebuild": 2,
        "resize": 0,  # v1.2
    }

    doomed = (await post_action(client, droplet_id, "shutdown")).json()["action"]
    assert doomed["status"] == "in-progress"  # errors only at its end, as on DO
    clock.advance(1.0)
    ended = (await client.get(f"/v2/actions/{doomed['id']}", headers=AUTH)).json()["action"]
    assert ended["status"] == "errored" and ended["completed_at"] is not None
    assert await get_status(client, droplet_id) == "active"

    assert (await post_action(client, droplet_id, "shutdown")).status_code == 201
    clock.advance(1.0)
    assert await get_status(client, droplet_id) == "off"
    counters = await stats(client)
    assert counters["actions"]["shutdown"] == 2
    assert counters["actions_errored"]["shutdown"] == 1
    assert (await client.get("/_fake/config")).json()["action_errored_next"]["shutdown"] == 0


async def test_action_422_pending_injection_then_success(
    make_client: ClientFactory, clock: ManualClock
) -> None:
    client = make_client(action_422_pending=2)
    droplet_id = (await booted(client, clock))["id"]
    for _ in range(2):
        response = await post_action(client, droplet_id, "reboot")
        assert response.status_code == 422 and response.json() == PENDING_EVENT
    assert (await post_action(client, droplet_id, "reboot")).status_code == 201
    counters = await stats(client)
    assert counters["actions_pending_event"] == 2 and counters["actions"]["reboot"] == 1


@pytest.mark.parametrize(
    ("kind", "method", "path", "ok"),
    [
        ("post_action", "POST", "/v2/droplets/{id}/actions", 201),
        ("list_actions", "GET", "/v2/droplets/{id}/actions", 200),
        ("delete_droplet", "DELETE", "/v2/droplets/{id}", 204),
    ],
)
async def test_fail_next_for_action_routes(
    make_client: ClientFactory, clock: ManualClock, kind: str, method: str, path: str, ok: int
) -> None:
    client = make_client()
    url = path.format(id=(await booted(client, clock))["id"])
    await client.post("/_fake/config", json={"fail_next": {kind: 2}})
    body = {"type": "reboot"} if method == "POST" else None
    statuses = [
        (await client.request(method, url, json=body, headers=AUTH)).status_code for _ in range(3)
    ]
    assert statuses == [500, 500, ok]
    counters = await stats(client)
    assert counters["server_errors"] == 2
    assert counters["by_route"][kind] == 3
    # A failed POST started nothing.
    assert counters["actions"]["reboot"] == (1 if kind == "post_action" else 0)


# -- DELETE ------------------------------------------------------------------------------


async def test_delete_then_404_everywhere(make_client: ClientFactory, clock: ManualClock) -> None:
    client = make_client()
    created = await create(client, tags=["order-5", "order-service"])
    droplet_id = created["droplet"]["id"]
    clock.advance(2.0)

    deleted = await client.delete(f"/v2/droplets/{droplet_id}", headers=AUTH)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert "ratelimit-remaining" in deleted.headers

    assert (await client.get(f"/v2/droplets/{droplet_id}", headers=AUTH)).status_code == 404
    listing = (await client.get("/v2/droplets?tag_name=order-5", headers=AUTH)).json()
    assert listing["meta"]["total"] == 0
    again = await client.delete(f"/v2/droplets/{droplet_id}", headers=AUTH)
    assert again.status_code == 404 and again.json()["id"] == "not_found"
    assert (await client.delete("/v2/droplets/12345", headers=AUTH)).status_code == 404
    assert (await post_action(client, droplet_id, "reboot")).status_code == 404
    # Its actions stay readable, as on DO.
    create_action = f"/v2/actions/{created['links']['actions'][0]['id']}"
    assert (await client.get(create_action, headers=AUTH)).json()["action"]["type"] == "create"

    counters = await stats(client)
    assert counters["deletes"] == 1
    assert counters["by_route"]["delete_droplet"] == 3
    assert counters["droplets"] == 1 and counters["droplets_removed"] == 0
    assert counters["droplets_per_tag"] == {}
    assert counters["droplets_by_status"] == {}
    assert counters["max_droplets_per_order_tag"] == 0


async def test_deleted_droplet_stays_listed_for_the_lag(
    make_client: ClientFactory, clock: ManualClock
) -> None:
    client = make_client(delete_listing_lag_seconds=5.0)
    droplet_id = (await booted(client, clock, tags=["order-6"]))["id"]
    await create(client, tags=["order-6"])  # a second one that stays

    assert (await client.delete(f"/v2/droplets/{droplet_id}", headers=AUTH)).status_code == 204
    assert (await client.get(f"/v2/droplets/{droplet_id}", headers=AUTH)).status_code == 404
    listing = (await client.get("/v2/droplets?tag_name=order-6", headers=AUTH)).json()
    assert droplet_id in [d["id"] for d in listing["droplets"]]
    assert (await stats(client))["droplets_per_tag"] == {"order-6": 1}  # it no longer exists
    assert (await client.delete(f"/v2/droplets/{droplet_id}", headers=AUTH)).status_code == 404

    clock.advance(5.0)
    listing = (await client.get("/v2/droplets?tag_name=order-6", headers=AUTH)).json()
    assert droplet_id not in [d["id"] for d in listing["droplets"]]
    assert listing["meta"]["total"] == 1


async def test_delete_during_an_action_errors_the_action(
    make_client: ClientFactory, clock: ManualClock
) -> None:
    client = make_client()
    droplet_id = (await booted(client, clock))["id"]
    action = (await post_action(client, droplet_id, "reboot")).json()["action"]
    assert (await client.delete(f"/v2/droplets/{droplet_id}", headers=AUTH)).status_code == 204
    clock.advance(1.0)
    ended = (await client.get(f"/v2/actions/{action['id']}", headers=AUTH)).json()["action"]
    assert ended["status"] == "errored"
    assert (await stats(client))["actions_in_progress"] == 0


# -- test controls: seeded droplets, forced status --------------------------------------


async def test_seeded_droplet_is_there_before_any_create(
    make_client: ClientFactory, clock: ManualClock
) -> None:
    client = make_client(consistency_delay_s=10.0)
    seeded = await client.post(
        "/_fake/droplets", json={"name": "vps-abcdef12", "tags": ["order-service", "order-abc"]}
    )
    assert seeded.status_code == 201
    droplet = seeded.json()["droplet"]
    assert droplet["status"] == "active" and droplet["networks"]["v4"]

    # Visible at once (no consistency delay) and listed under its tag.
    listing = (await client.get("/v2/droplets?tag_name=order-abc", headers=AUTH)).json()
    assert [d["id"] for d in listing["droplets"]] == [droplet["id"]]
    actions = (await client.get(f"/v2/droplets/{droplet['id']}/actions", headers=AUTH)).json()
    assert [(a["type"], a["status"]) for a in actions["actions"]] == [("create", "completed")]
    counters = await stats(client)
    assert counters["droplets"] == counters["droplets_seeded"] == 1
    assert counters["by_route"]["create"] == 0
    assert counters["requests"] == 2  # the two reads above; seeding is not a /v2 request
    assert counters["droplets_per_tag"]["order-abc"] == 1


async def test_seeded_new_droplet_boots(make_client: ClientFactory, clock: ManualClock) -> None:
    client = make_client()
    droplet = (await client.post("/_fake/droplets", json={"status": "new"})).json()["droplet"]
    assert droplet["status"] == "new"
    clock.advance(2.0)
    assert await get_status(client, droplet["id"]) == "active"


@pytest.mark.parametrize(
    "body", [{"status": "exploded"}, {"tags": ["bad tag"]}, {"colour": "red"}, ["x"]]
)
async def test_seeding_validation(make_client: ClientFactory, body: Any) -> None:
    client = make_client()
    response = await client.post("/_fake/droplets", json=body)
    assert response.status_code == 422
    assert (await stats(client))["droplets"] == 0


async def test_forced_status(make_client: ClientFactory, clock: ManualClock) -> None:
    client = make_client()
    droplet_id = (await booted(client, clock))["id"]
    url = f"/_fake/droplets/{droplet_id}/status"
    assert (await client.post(url, json={"status": "errored"})).status_code == 200
    assert await get_status(client, droplet_id) == "errored"
    assert (await stats(client))["droplets_by_status"] == {"errored": 1}
    assert (await client.post(url, json={"status": "melted"})).status_code == 422
    assert (await client.post(url, json={})).status_code == 422
    missing = await client.post("/_fake/droplets/1/status", json={"status": "off"})
    assert missing.status_code == 404


async def test_forced_status_during_boot_is_kept(
    make_client: ClientFactory, clock: ManualClock
) -> None:
    client = make_client()
    droplet_id = (await create(client))["droplet"]["id"]
    await client.post(f"/_fake/droplets/{droplet_id}/status", json={"status": "errored"})
    clock.advance(2.0)
    assert await get_status(client, droplet_id) == "errored"


def test_in_process_controls_and_actions() -> None:
    now = [0.0]
    fake = FakeState(FakeConfig(action_seconds=0.5), clock=lambda: now[0])
    droplet = fake.add_droplet(tags=["order-1"], status="off")["droplet"]
    assert fake.set_droplet_status(droplet["id"], "off")["droplet"]["status"] == "off"

    action = fake.post_droplet_action(droplet["id"], {"type": "power_on"})["action"]
    with pytest.raises(ApiError) as busy:
        fake.post_droplet_action(droplet["id"], {"type": "reboot"})
    assert busy.value.status == 422 and busy.value.body == PENDING_EVENT
    now[0] += 0.5
    assert fake.get_action(action["id"])["action"]["status"] == "completed"
    assert fake.get_droplet(droplet["id"])["droplet"]["status"] == "active"

    fake.delete_droplet(droplet["id"])
    with pytest.raises(ApiError):
        fake.get_droplet(droplet["id"])
    counters = fake.stats()
    assert (counters["deletes"], counters["droplets_seeded"]) == (1, 1)
    assert counters["actions"]["power_on"] == 1

    fake.reset()
    assert fake.stats()["actions"]["power_on"] == 0 and fake.stats()["deletes"] == 0


def test_cli_action_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    from mocks.digitalocean.__main__ import parse_args

    assert parse_args([]).action_seconds == 1.0
    monkeypatch.setenv("FAKE_DO_ACTION_SECONDS", "0.25")
    assert parse_args([]).action_seconds == 0.25
    assert parse_args(["--action-seconds", "3"]).action_seconds == 3.0
