"""DigitalOceanClient against a respx-mocked API.

The rate budget runs on a fake clock (its sleeps are instant but recorded) and
retry waits are a millisecond, so the whole file runs in well under a second.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx
import stamina

from order_service.provisioning.digitalocean import (
    CreatedDroplet,
    DigitalOceanAccountError,
    DigitalOceanAccountFullError,
    DigitalOceanAuthError,
    DigitalOceanClient,
    DigitalOceanError,
    DigitalOceanNotConfiguredError,
    DigitalOceanPermanentError,
    DigitalOceanUnavailableError,
    Droplet,
    _RetryableFailure,
)
from order_service.provisioning.rate_budget import RateBudget

BASE = "https://do.test"
TOKEN = "dop_v1_sekrit-token-0123456789"


class FakeTime:
    """Budget clock: sleeps advance time instantly and are recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.wall_base = time.time()
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.wall_base + self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class CountingBudget(RateBudget):
    """Records how often the client goes through the budget."""

    def __init__(self, fake: FakeTime) -> None:
        super().__init__(clock=fake.clock, wall_clock=fake.wall, sleep=fake.sleep)
        self.acquired = 0
        self.bulk = 0
        self.observed: list[Mapping[str, str]] = []

    async def acquire(self, *, bulk: bool = False) -> None:
        self.acquired += 1
        self.bulk += bulk
        await super().acquire(bulk=bulk)

    def observe(self, headers: Mapping[str, str]) -> None:
        self.observed.append(headers)
        super().observe(headers)


def droplet_json(droplet_id: int = 101, **overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "id": droplet_id,
        "name": f"vps-{droplet_id}",
        "status": "active",
        "region": {"slug": "fra1", "name": "Frankfurt 1"},
        "size_slug": "s-1vcpu-1gb",
        "size": {"slug": "s-1vcpu-1gb"},
        "image": {"id": 7, "slug": "ubuntu-24-04-x64"},
        "networks": {
            "v4": [
                {"ip_address": "10.110.0.2", "type": "private"},
                {"ip_address": "203.0.113.7", "type": "public"},
            ]
        },
        "tags": ["order-42", "vps"],
        "created_at": "2024-05-01T12:30:00Z",
    }
    raw.update(overrides)
    return raw


def error_json(error_id: str, message: str) -> dict[str, str]:
    return {"id": error_id, "message": message}


def ok_headers(remaining: int = 4000) -> dict[str, str]:
    return {
        "ratelimit-limit": "5000",
        "ratelimit-remaining": str(remaining),
        "ratelimit-reset": str(int(time.time()) + 60),
    }


@pytest.fixture(autouse=True)
def real_retries() -> Iterator[None]:
    """These tests count attempts, so stamina's test mode (which a shared conftest
    may switch on to skip waits) must be off here; the waits are tiny anyway."""
    with stamina.set_testing(False):
        yield


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def budget(fake_time: FakeTime) -> CountingBudget:
    return CountingBudget(fake_time)


@pytest.fixture
def responses() -> list[tuple[str, int]]:
    return []


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
async def make_client(
    budget: CountingBudget, responses: list[tuple[str, int]]
) -> AsyncIterator[Callable[..., DigitalOceanClient]]:
    """Build clients with fast retries and the recording budget; closes them afterwards."""
    created: list[DigitalOceanClient] = []

    def factory(**overrides: Any) -> DigitalOceanClient:
        kwargs: dict[str, Any] = {
            "budget": budget,
            "retry_attempts": 5,
            "retry_initial_s": 0.001,
            "retry_max_s": 0.004,
            "on_response": lambda op, status: responses.append((op, status)),
        }
        kwargs.update(overrides)
        token = kwargs.pop("token", TOKEN)
        client = DigitalOceanClient(BASE, token, **kwargs)
        created.append(client)
        return client

    yield factory
    for client in created:
        assert TOKEN not in repr(client)
        await client.aclose()


@pytest.fixture
def client(make_client: Callable[..., DigitalOceanClient]) -> DigitalOceanClient:
    return make_client()


# ------------------------------------------------------------------------ create


async def test_create_sends_payload_and_parses_droplet_and_action(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    route = router.post("/v2/droplets").respond(
        202,
        json={
            "droplet": droplet_json(101, status="new", networks={"v4": []}),
            "links": {
                "actions": [
                    {"id": 5, "rel": "something-else", "href": "x"},
                    {"id": 9001, "rel": "create", "href": f"{BASE}/v2/actions/9001"},
                ]
            },
        },
        headers=ok_headers(),
    )

    created = await client.create_droplet(
        name="vps-101",
        region="fra1",
        size="s-1vcpu-1gb",
        image="ubuntu-24-04-x64",
        tags=("order-42", "vps"),
    )

    assert isinstance(created, CreatedDroplet)
    assert created.create_action_id == 9001
    assert created.droplet.id == 101
    assert created.droplet.status == "new"
    assert created.droplet.ipv4_public is None
    request = route.calls.last.request
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {
        "name": "vps-101",
        "region": "fra1",
        "size": "s-1vcpu-1gb",
        "image": "ubuntu-24-04-x64",
        "tags": ["order-42", "vps"],
        "monitoring": True,
    }


async def test_create_without_action_links_has_no_action_id(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    router.post("/v2/droplets").respond(202, json={"droplet": droplet_json(7)})

    created = await client.create_droplet(name="a", region="fra1", size="s", image="i", tags=[])

    assert created.create_action_id is None


# -------------------------------------------------------------------------- gets


async def test_get_droplet_parses_every_field(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    router.get("/v2/droplets/101").respond(200, json={"droplet": droplet_json(101)})

    droplet = await client.get_droplet(101)

    assert droplet == Droplet(
        id=101,
        name="vps-101",
        status="active",
        region="fra1",
        size="s-1vcpu-1gb",
        image="ubuntu-24-04-x64",
        ipv4_public="203.0.113.7",
        ipv4_private="10.110.0.2",
        tags=("order-42", "vps"),
        created_at=datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
    )
    assert droplet.created_at is not None and droplet.created_at.utcoffset() is not None


async def test_get_droplet_404_is_none(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    route = router.get("/v2/droplets/5").respond(
        404, json=error_json("not_found", "The resource you were accessing could not be found.")
    )

    assert await client.get_droplet(5) is None
    assert route.call_count == 1


async def test_get_action_status(client: DigitalOceanClient, router: respx.MockRouter) -> None:
    router.get("/v2/actions/9001").respond(
        200, json={"action": {"id": 9001, "status": "completed", "type": "create"}}
    )
    router.get("/v2/actions/404").respond(404, json=error_json("not_found", "nope"))

    assert await client.get_action_status(9001) == "completed"
    assert await client.get_action_status(404) is None


def test_from_api_is_tolerant_of_missing_optional_fields() -> None:
    droplet = Droplet.from_api(
        {"id": "12", "name": "x", "status": "new", "size": {"slug": "s-2vcpu-4gb"}}
    )

    assert droplet.id == 12
    assert droplet.size == "s-2vcpu-4gb"
    assert (droplet.region, droplet.image, droplet.ipv4_public, droplet.created_at) == (
        None,
        None,
        None,
        None,
    )
    assert droplet.tags == ()


def test_from_api_normalises_timestamps_to_utc() -> None:
    droplet = Droplet.from_api({"id": 1, "created_at": "2024-05-01T14:30:00+02:00"})
    naive = Droplet.from_api({"id": 1, "created_at": "2024-05-01T12:30:00"})
    broken = Droplet.from_api({"id": 1, "created_at": "yesterday"})

    assert droplet.created_at == datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    assert droplet.created_at is not None and droplet.created_at.tzinfo is UTC
    assert naive.created_at == datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    assert broken.created_at is None


def test_from_api_requires_an_id() -> None:
    with pytest.raises((KeyError, ValueError)):
        Droplet.from_api({"name": "no id"})


# -------------------------------------------------------------------------- list


async def test_list_by_tag_follows_next_links_over_three_pages(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    pages = {
        "1": ([1, 2], "https://api.digitalocean.com/v2/droplets?page=2&per_page=200&tag_name=t"),
        "2": ([3, 4], "https://api.digitalocean.com/v2/droplets?page=3&per_page=200&tag_name=t"),
        "3": ([5], None),
    }

    def answer(request: httpx.Request) -> httpx.Response:
        ids, next_url = pages[request.url.params["page"]]
        links = {"pages": {"next": next_url}} if next_url else {"pages": {}}
        body = {"droplets": [droplet_json(i) for i in ids], "links": links, "meta": {"total": 5}}
        return httpx.Response(200, json=body)

    route = router.get("/v2/droplets").mock(side_effect=answer)

    droplets = await client.list_droplets_by_tag("t")

    assert [d.id for d in droplets] == [1, 2, 3, 4, 5]
    assert route.call_count == 3
    params = [dict(call.request.url.params) for call in route.calls]
    assert params == [{"tag_name": "t", "page": str(p), "per_page": "200"} for p in (1, 2, 3)]


async def test_list_by_tag_uses_meta_total_without_links_and_dedups(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    pages = {"1": [1, 2], "2": [2, 3]}  # droplet 2 shifted onto page 2 meanwhile

    def answer(request: httpx.Request) -> httpx.Response:
        ids = pages[request.url.params["page"]]
        body = {"droplets": [droplet_json(i) for i in ids], "links": {}, "meta": {"total": 4}}
        return httpx.Response(200, json=body)

    route = router.get("/v2/droplets").mock(side_effect=answer)

    droplets = await client.list_droplets_by_tag("t", per_page=2)

    assert [d.id for d in droplets] == [1, 2, 3]
    assert route.call_count == 2


async def test_the_look_up_before_a_create_is_budgeted_with_the_creates(
    client: DigitalOceanClient,
    router: respx.MockRouter,
    budget: CountingBudget,
    responses: list[tuple[str, int]],
) -> None:
    """The follow-ups' reserve is for seeing droplets boot: a storm's look-ups spent it."""
    router.get("/v2/droplets").respond(200, json={"droplets": [], "links": {}, "meta": {}})

    await client.list_droplets_by_tag("order-1")
    assert budget.bulk == 0
    await client.list_droplets_by_tag("order-1", before_create=True)
    assert budget.bulk == 1
    assert [op for op, _ in responses] == ["list_droplets", "look_up_droplets"]


async def test_list_by_tag_stops_on_an_empty_page(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    route = router.get("/v2/droplets").respond(
        200, json={"droplets": [], "links": {"pages": {"next": "x?page=2"}}, "meta": {"total": 9}}
    )

    assert await client.list_droplets_by_tag("t") == []
    assert route.call_count == 1


# ------------------------------------------------------------------- rate limits


async def test_429_with_retry_after_pauses_the_budget_then_succeeds(
    client: DigitalOceanClient,
    router: respx.MockRouter,
    fake_time: FakeTime,
    responses: list[tuple[str, int]],
) -> None:
    route = router.get("/v2/droplets/1").mock(
        side_effect=[
            httpx.Response(
                429,
                json=error_json("too_many_requests", "API Rate limit exceeded."),
                headers={"Retry-After": "7", **ok_headers(remaining=100)},
            ),
            httpx.Response(200, json={"droplet": droplet_json(1)}),
        ]
    )

    droplet = await client.get_droplet(1)

    assert droplet is not None and droplet.id == 1
    assert route.call_count == 2
    assert sum(fake_time.sleeps) == pytest.approx(7.0, abs=0.1)
    assert responses == [("get_droplet", 429), ("get_droplet", 200)]


async def test_429_without_retry_after_waits_until_ratelimit_reset(
    client: DigitalOceanClient, router: respx.MockRouter, fake_time: FakeTime
) -> None:
    reset = time.time() + 30
    route = router.get("/v2/actions/3").mock(
        side_effect=[
            httpx.Response(
                429,
                json=error_json("too_many_requests", "API Rate limit exceeded."),
                headers={"ratelimit-remaining": "0", "ratelimit-reset": f"{reset:.3f}"},
            ),
            httpx.Response(200, json={"action": {"status": "in-progress"}}),
        ]
    )

    assert await client.get_action_status(3) == "in-progress"
    assert route.call_count == 2
    assert sum(fake_time.sleeps) == pytest.approx(30.0, abs=1.0)


async def test_429_without_any_hint_waits_a_default_minute(
    client: DigitalOceanClient, router: respx.MockRouter, fake_time: FakeTime
) -> None:
    router.get("/v2/actions/3").mock(
        side_effect=[
            httpx.Response(429, json=error_json("too_many_requests", "slow down")),
            httpx.Response(200, json={"action": {"status": "completed"}}),
        ]
    )

    assert await client.get_action_status(3) == "completed"
    assert sum(fake_time.sleeps) == pytest.approx(60.0)


async def test_429s_do_not_use_attempts_but_are_bounded(
    make_client: Callable[..., DigitalOceanClient], router: respx.MockRouter
) -> None:
    do = make_client(retry_attempts=1, max_rate_limit_waits=3)
    route = router.get("/v2/droplets/1").respond(
        429, json=error_json("too_many_requests", "slow down"), headers={"Retry-After": "1"}
    )

    with pytest.raises(DigitalOceanUnavailableError, match="rate limit") as caught:
        await do.get_droplet(1)

    assert route.call_count == 4  # the first try + 3 waits, despite retry_attempts=1
    assert caught.value.status_code == 429


async def test_low_remaining_header_slows_the_next_request(
    client: DigitalOceanClient, router: respx.MockRouter, fake_time: FakeTime
) -> None:
    reset = time.time() + 20
    router.get("/v2/droplets/1").respond(
        200,
        json={"droplet": droplet_json(1)},
        headers={"ratelimit-remaining": "1", "ratelimit-reset": f"{reset:.3f}"},
    )

    await client.get_droplet(1)
    assert fake_time.sleeps == []
    await client.get_droplet(1)

    assert sum(fake_time.sleeps) == pytest.approx(20.0, abs=1.0)


# ----------------------------------------------------------------------- retries


async def test_three_503_then_200_succeeds_through_the_budget_each_time(
    client: DigitalOceanClient,
    router: respx.MockRouter,
    budget: CountingBudget,
    responses: list[tuple[str, int]],
) -> None:
    unavailable = httpx.Response(503, json=error_json("service_unavailable", "Server busy"))
    route = router.get("/v2/droplets/1").mock(
        side_effect=[
            unavailable,
            unavailable,
            unavailable,
            httpx.Response(200, json={"droplet": droplet_json(1)}),
        ]
    )

    droplet = await client.get_droplet(1)

    assert droplet is not None
    assert route.call_count == 4
    assert budget.acquired == 4
    assert len(budget.observed) == 4
    assert responses == [("get_droplet", 503)] * 3 + [("get_droplet", 200)]


async def test_five_503_is_unavailable(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    route = router.get("/v2/droplets/1").respond(
        503, json=error_json("service_unavailable", "Server busy")
    )

    with pytest.raises(DigitalOceanUnavailableError) as caught:
        await client.get_droplet(1)

    assert route.call_count == 5
    assert caught.value.status_code == 503
    assert "DigitalOcean answered 503" in caught.value.message
    assert "after 5 attempts" in caught.value.message


async def test_connection_refused_is_unavailable_after_retries(
    client: DigitalOceanClient, router: respx.MockRouter, responses: list[tuple[str, int]]
) -> None:
    route = router.post("/v2/droplets").mock(side_effect=httpx.ConnectError("Connection refused"))

    with pytest.raises(DigitalOceanUnavailableError) as caught:
        await client.create_droplet(name="a", region="fra1", size="s", image="i", tags=[])

    assert route.call_count == 5
    assert caught.value.status_code is None
    assert caught.value.message.startswith(
        "DigitalOcean unreachable: connection refused after 5 attempts"
    )
    assert responses == [("create_droplet", 0)] * 5


async def test_timeout_is_unavailable_after_retries(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    route = router.get("/v2/actions/1").mock(side_effect=httpx.ReadTimeout("timed out"))

    with pytest.raises(DigitalOceanUnavailableError, match="timed out") as caught:
        await client.get_action_status(1)

    assert route.call_count == 5
    assert "after 5 attempts" in str(caught.value)


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(503, json={"id": "service_unavailable", "message": "Server busy"}),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("peer closed connection"),
    ],
    ids=["503", "read-timeout", "dropped-connection"],
)
async def test_ambiguous_create_failure_is_not_retried(
    client: DigitalOceanClient, router: respx.MockRouter, failure: object
) -> None:
    # The create may have reached DO: sending it again could build a second
    # droplet, so the caller must look it up by tag first.
    if isinstance(failure, httpx.Response):
        route = router.post("/v2/droplets").mock(return_value=failure)
    else:
        route = router.post("/v2/droplets").mock(side_effect=failure)

    with pytest.raises(DigitalOceanUnavailableError) as caught:
        await client.create_droplet(name="a", region="fra1", size="s", image="i", tags=[])

    assert route.call_count == 1
    assert caught.value.ambiguous is True


async def test_unambiguous_failures_are_not_flagged_ambiguous(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    router.get("/v2/droplets/1").respond(503, json=error_json("service_unavailable", "busy"))

    with pytest.raises(DigitalOceanUnavailableError) as caught:
        await client.get_droplet(1)

    assert caught.value.ambiguous is False


async def test_transient_422_on_create_is_retried(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    route = router.post("/v2/droplets").mock(
        side_effect=[
            httpx.Response(
                422,
                json=error_json(
                    "unprocessable_entity", "Droplet creation is temporarily unavailable."
                ),
            ),
            httpx.Response(202, json={"droplet": droplet_json(3)}),
        ]
    )

    created = await client.create_droplet(name="a", region="fra1", size="s", image="i", tags=[])

    assert created.droplet.id == 3
    assert route.call_count == 2


def test_backoff_doubles_with_equal_jitter_up_to_the_maximum(
    make_client: Callable[..., DigitalOceanClient],
) -> None:
    hook = make_client(retry_initial_s=0.5, retry_max_s=8.0)._backoff_hook()
    assert hook(DigitalOceanPermanentError("no")) is False

    waits = [hook(_RetryableFailure("x", status_code=503)) for _ in range(7)]
    ceilings = [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    for wait, ceiling in zip(waits, ceilings, strict=True):
        assert isinstance(wait, float)
        assert ceiling / 2 <= wait <= ceiling


# -------------------------------------------------------------- permanent errors


async def test_401_is_the_accounts_trouble_at_once_not_the_orders(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    # SPEC §13: a refused token marks the account UNHEALTHY; the work waits.
    route = router.post("/v2/droplets").respond(
        401, json=error_json("unauthorized", "Unable to authenticate you")
    )

    with pytest.raises(DigitalOceanAuthError) as caught:
        await client.create_droplet(name="a", region="fra1", size="s", image="i", tags=[])

    assert route.call_count == 1
    assert not isinstance(caught.value, DigitalOceanPermanentError)
    assert caught.value.status_code == 401
    assert caught.value.message == (
        "DigitalOcean rejected the API token (401 unauthorized): Unable to authenticate you"
    )


@pytest.mark.parametrize(
    ("status", "error_id", "message", "error_type"),
    [
        (401, "unauthorized", "Unable to authenticate you", DigitalOceanAuthError),
        (
            403,
            "forbidden",
            "You do not have access for the attempted action.",
            DigitalOceanAuthError,
        ),
        (
            422,
            "unprocessable_entity",
            "creating this/these droplet(s) will exceed your droplet limit",
            DigitalOceanAccountFullError,
        ),
    ],
)
async def test_account_errors_reach_the_hook_once_and_are_not_retried(
    make_client: Callable[..., DigitalOceanClient],
    router: respx.MockRouter,
    status: int,
    error_id: str,
    message: str,
    error_type: type[Exception],
) -> None:
    told: list[Exception] = []
    do = make_client(on_account_error=told.append)
    route = router.post("/v2/droplets").respond(status, json=error_json(error_id, message))

    with pytest.raises(error_type) as caught:
        await do.create_droplet(name="a", region="fra1", size="s", image="i", tags=[])

    assert route.call_count == 1
    assert told == [caught.value]
    assert isinstance(caught.value, DigitalOceanAccountError)


async def test_401_on_get_is_an_account_error_too(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    route = router.get("/v2/droplets/1").respond(
        401, json=error_json("unauthorized", "Unable to authenticate you")
    )

    with pytest.raises(DigitalOceanAuthError):
        await client.get_droplet(1)
    assert route.call_count == 1


@pytest.mark.parametrize(
    ("status", "error_id", "message"),
    [
        (422, "unprocessable_entity", "You specified an invalid size for Droplet creation."),
        (422, "unprocessable_entity", "Size is not available in this region."),
        (400, "bad_request", "Invalid JSON"),
    ],
)
async def test_other_4xx_on_create_is_permanent_with_do_message(
    client: DigitalOceanClient,
    router: respx.MockRouter,
    status: int,
    error_id: str,
    message: str,
) -> None:
    route = router.post("/v2/droplets").respond(status, json=error_json(error_id, message))

    with pytest.raises(DigitalOceanPermanentError) as caught:
        await client.create_droplet(name="a", region="fra1", size="s", image="i", tags=[])

    assert route.call_count == 1
    assert caught.value.status_code == status
    assert message in caught.value.message
    assert not isinstance(caught.value, DigitalOceanNotConfiguredError)


@pytest.mark.parametrize("token", [None, ""])
async def test_missing_token_raises_before_sending_anything(
    make_client: Callable[..., DigitalOceanClient],
    router: respx.MockRouter,
    budget: CountingBudget,
    token: str | None,
) -> None:
    do = make_client(token=token)
    route = router.route().respond(200, json={})

    calls = [
        do.create_droplet(name="a", region="fra1", size="s", image="i", tags=[]),
        do.get_droplet(1),
        do.get_action_status(1),
        do.list_droplets_by_tag("t"),
    ]
    for call in calls:
        with pytest.raises(DigitalOceanNotConfiguredError, match="DIGITALOCEAN_API_TOKEN"):
            await call

    assert route.call_count == 0
    assert budget.acquired == 0
    # No token is the account's trouble (SPEC §2, §13: paid orders wait), not the order's.
    assert issubclass(DigitalOceanNotConfiguredError, DigitalOceanAuthError)
    assert not issubclass(DigitalOceanNotConfiguredError, DigitalOceanPermanentError)


# ------------------------------------------------------------- malformed answers


@pytest.mark.parametrize(
    "content",
    [
        b"<html>gateway</html>",
        b'{"droplet": ',
        b"[1, 2]",
        b'{"droplet": {"name": "no id"}}',
        b'{"droplet": [1]}',
        b'{"droplet": {"id": true}}',
    ],
)
async def test_malformed_2xx_answer_is_unavailable_not_a_crash(
    client: DigitalOceanClient, router: respx.MockRouter, content: bytes
) -> None:
    route = router.get("/v2/droplets/1").respond(
        200, content=content, headers={"Content-Type": "application/json"}
    )

    with pytest.raises(DigitalOceanUnavailableError, match="get_droplet"):
        await client.get_droplet(1)

    assert route.call_count == 1


async def test_malformed_action_answer_is_unavailable(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    router.get("/v2/actions/1").respond(200, json={"action": {"status": None}})

    with pytest.raises(DigitalOceanUnavailableError):
        await client.get_action_status(1)


# ------------------------------------------------------------------ token safety


async def test_token_never_appears_in_errors_logs_or_repr(
    make_client: Callable[..., DigitalOceanClient],
    router: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    do = make_client(retry_attempts=2)
    router.get("/v2/droplets/1").respond(
        401, json=error_json("unauthorized", f"Unable to authenticate you with {TOKEN}")
    )
    router.get("/v2/droplets/2").respond(503, text=f"upstream echoed Bearer {TOKEN}")
    router.get("/v2/droplets/3").mock(side_effect=httpx.ConnectError(f"boom {TOKEN}"))
    router.get("/v2/droplets/4").respond(200, content=b"not json")

    errors: list[DigitalOceanError] = []
    with caplog.at_level(logging.DEBUG):
        for droplet_id in (1, 2, 3, 4):
            with pytest.raises(DigitalOceanError) as caught:
                await do.get_droplet(droplet_id)
            errors.append(caught.value)

    for error in errors:
        assert TOKEN not in str(error)
        assert TOKEN not in repr(error)
        assert TOKEN not in error.message
    assert TOKEN not in caplog.text
    assert all(TOKEN not in str(record.__dict__) for record in caplog.records)
    assert TOKEN not in repr(do)


# ---------------------------------------------------------------------- plumbing


async def test_on_response_failure_does_not_break_the_call(
    make_client: Callable[..., DigitalOceanClient], router: respx.MockRouter
) -> None:
    def broken(operation: str, status: int) -> None:
        raise RuntimeError("metrics down")

    do = make_client(on_response=broken)
    router.get("/v2/droplets/1").respond(200, json={"droplet": droplet_json(1)})

    assert await do.get_droplet(1) is not None


async def test_base_url_may_include_v2(budget: CountingBudget) -> None:
    with respx.mock(base_url=BASE) as mock:
        mock.get("/v2/droplets/1").respond(200, json={"droplet": droplet_json(1)})
        do = DigitalOceanClient(f"{BASE}/v2/", TOKEN, budget=budget)
        assert await do.get_droplet(1) is not None
        await do.aclose()


async def test_custom_transport_is_used_and_aclose_closes_the_pool(budget: CountingBudget) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"action": {"status": "errored"}})

    do = DigitalOceanClient(BASE, TOKEN, budget=budget, transport=httpx.MockTransport(handler))

    assert await do.get_action_status(1) == "errored"
    await do.aclose()
    assert do._http.is_closed


async def test_concurrent_calls_share_the_budget(
    make_client: Callable[..., DigitalOceanClient], router: respx.MockRouter
) -> None:
    fake = FakeTime()
    shared = RateBudget(per_minute=10, per_hour=1000, clock=fake.clock, sleep=fake.sleep)
    do = make_client(budget=shared)
    sent_at: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent_at.append(fake.now)
        return httpx.Response(200, json={"droplet": droplet_json(1)})

    router.get("/v2/droplets/1").mock(side_effect=answer)

    results = await asyncio.gather(*(do.get_droplet(1) for _ in range(25)))

    assert all(result is not None for result in results)
    assert [sent_at.count(t) for t in sorted(set(sent_at))] == [10, 10, 5]
    assert fake.now == pytest.approx(124.0)
