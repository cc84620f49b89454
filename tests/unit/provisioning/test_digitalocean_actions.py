"""DigitalOceanClient's droplet-action and delete calls against a respx-mocked API.

The budget here is a duck-typed recorder with only ``acquire``/``observe``/
``pause_for``: that is the whole interface the client may use, so a shared
budget can replace the in-process one. Retry waits are a millisecond.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx
import stamina

from order_service.provisioning.digitalocean import (
    DigitalOceanAuthError,
    DigitalOceanBusyError,
    DigitalOceanClient,
    DigitalOceanError,
    DigitalOceanNotFoundError,
    DigitalOceanPermanentError,
    DigitalOceanUnavailableError,
    Droplet,
    DropletAction,
)

BASE = "https://do.test"
TOKEN = "dop_v1_sekrit-token-0123456789"
PENDING = {"id": "unprocessable_entity", "message": "Droplet already has a pending event."}


class RecordingBudget:
    """Only the three methods the client may call; records every use, never waits."""

    def __init__(self) -> None:
        self.acquired = 0
        self.observed: list[Mapping[str, str]] = []
        self.pauses: list[float] = []

    async def acquire(self, *, bulk: bool = False) -> None:
        self.acquired += 1

    def observe(self, headers: Mapping[str, str]) -> None:
        self.observed.append(headers)

    def pause_for(self, seconds: float) -> None:
        self.pauses.append(seconds)


def action_json(action_id: int = 77, **overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "id": action_id,
        "status": "in-progress",
        "type": "reboot",
        "started_at": "2026-12-02T10:00:00Z",
        "completed_at": None,
        "resource_id": 101,
        "resource_type": "droplet",
        "region_slug": "fra1",
    }
    raw.update(overrides)
    return raw


@pytest.fixture(autouse=True)
def real_retries() -> Iterator[None]:
    # These tests count attempts: stamina's test mode must be off.
    with stamina.set_testing(False):
        yield


@pytest.fixture
def budget() -> RecordingBudget:
    return RecordingBudget()


@pytest.fixture
def responses() -> list[tuple[str, int]]:
    return []


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
async def make_client(
    budget: RecordingBudget, responses: list[tuple[str, int]]
) -> AsyncIterator[Callable[..., DigitalOceanClient]]:
    created: list[DigitalOceanClient] = []

    def factory(**overrides: Any) -> DigitalOceanClient:
        kwargs: dict[str, Any] = {
            "budget": budget,
            "retry_attempts": 4,
            "retry_initial_s": 0.001,
            "retry_max_s": 0.002,
            "on_response": lambda op, status: responses.append((op, status)),
        }
        kwargs.update(overrides)
        client = DigitalOceanClient(BASE, TOKEN, **kwargs)
        created.append(client)
        return client

    yield factory
    for client in created:
        await client.aclose()


@pytest.fixture
def client(make_client: Callable[..., DigitalOceanClient]) -> DigitalOceanClient:
    return make_client()


# ------------------------------------------------------------------ post action


async def test_post_action_sends_type_and_parses_the_201(
    client: DigitalOceanClient, router: respx.MockRouter, budget: RecordingBudget
) -> None:
    route = router.post("/v2/droplets/101/actions").respond(
        201, json={"action": action_json(77)}, headers={"ratelimit-remaining": "4999"}
    )

    action = await client.post_droplet_action(101, "reboot")

    assert action == DropletAction(
        id=77,
        type="reboot",
        status="in-progress",
        started_at=datetime(2026, 12, 2, 10, 0, tzinfo=UTC),
        completed_at=None,
        resource_id=101,
    )
    request = route.calls.last.request
    assert json.loads(request.content) == {"type": "reboot"}
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert budget.acquired == 1
    assert budget.observed[0]["ratelimit-remaining"] == "4999"


async def test_rebuild_sends_the_image_slug(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    route = router.post("/v2/droplets/5/actions").respond(
        201, json={"action": action_json(8, type="rebuild", resource_id=5)}
    )

    action = await client.post_droplet_action(5, "rebuild", image="debian-12-x64")

    assert action.type == "rebuild"
    assert json.loads(route.calls.last.request.content) == {
        "type": "rebuild",
        "image": "debian-12-x64",
    }


@pytest.mark.parametrize(
    ("kind", "image"),
    [("rebuild", None), ("reboot", "debian-12-x64"), ("destroy", None), ("snapshot", None)],
)
async def test_bad_action_arguments_are_refused_before_any_request(
    client: DigitalOceanClient,
    router: respx.MockRouter,
    budget: RecordingBudget,
    kind: str,
    image: str | None,
) -> None:
    route = router.post("/v2/droplets/5/actions").respond(201, json={"action": action_json()})

    with pytest.raises(ValueError):
        await client.post_droplet_action(5, kind, image=image)

    assert route.call_count == 0 and budget.acquired == 0


async def test_pending_event_422_is_retried_then_succeeds(
    client: DigitalOceanClient,
    router: respx.MockRouter,
    responses: list[tuple[str, int]],
) -> None:
    route = router.post("/v2/droplets/101/actions").mock(
        side_effect=[
            httpx.Response(422, json=PENDING),
            httpx.Response(422, json=PENDING),
            httpx.Response(201, json={"action": action_json(9, type="power_off")}),
        ]
    )

    action = await client.post_droplet_action(101, "power_off")

    assert action.id == 9
    assert route.call_count == 3
    assert responses == [("post_droplet_action", 422)] * 2 + [("post_droplet_action", 201)]


async def test_pending_event_past_the_attempts_is_busy_and_unavailable(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    route = router.post("/v2/droplets/101/actions").respond(422, json=PENDING)

    with pytest.raises(DigitalOceanBusyError) as caught:
        await client.post_droplet_action(101, "shutdown")

    assert isinstance(caught.value, DigitalOceanUnavailableError)
    assert not caught.value.ambiguous  # a 422 started nothing: safe to send again
    assert caught.value.status_code == 422
    assert "pending event" in caught.value.message
    assert route.call_count == 4


async def test_other_422_on_an_action_is_permanent(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    route = router.post("/v2/droplets/1/actions").respond(
        422, json={"id": "unprocessable_entity", "message": "Image is not available."}
    )

    with pytest.raises(DigitalOceanPermanentError, match="Image is not available") as caught:
        await client.post_droplet_action(1, "rebuild", image="gone-image")

    assert not isinstance(caught.value, DigitalOceanNotFoundError)
    assert route.call_count == 1


async def test_action_on_a_missing_droplet_is_not_found(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    route = router.post("/v2/droplets/404/actions").respond(
        404,
        json={"id": "not_found", "message": "The resource you were accessing could not be found."},
    )

    with pytest.raises(DigitalOceanNotFoundError) as caught:
        await client.post_droplet_action(404, "power_on")

    assert isinstance(caught.value, DigitalOceanPermanentError)
    assert caught.value.status_code == 404
    assert route.call_count == 1


async def test_5xx_on_an_action_is_ambiguous_and_not_resent(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    route = router.post("/v2/droplets/1/actions").respond(
        500, json={"id": "server_error", "message": "boom"}
    )

    with pytest.raises(DigitalOceanUnavailableError) as caught:
        await client.post_droplet_action(1, "reboot")

    # The reboot may have started: the caller must read the action list first.
    assert caught.value.ambiguous
    assert route.call_count == 1


async def test_timeout_on_an_action_is_ambiguous(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    route = router.post("/v2/droplets/1/actions").mock(side_effect=httpx.ReadTimeout("slow"))

    with pytest.raises(DigitalOceanUnavailableError) as caught:
        await client.post_droplet_action(1, "rebuild", image="ubuntu-24-04-x64")

    assert caught.value.ambiguous
    assert route.call_count == 1


async def test_5xx_on_an_action_is_retried_when_the_caller_allows_it(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    route = router.post("/v2/droplets/1/actions").mock(
        side_effect=[
            httpx.Response(503, json={"id": "server_error", "message": "boom"}),
            httpx.Response(201, json={"action": action_json(3, type="power_on")}),
        ]
    )

    action = await client.post_droplet_action(1, "power_on", retry_ambiguous=True)

    assert action.id == 3 and route.call_count == 2


async def test_connection_refused_on_an_action_is_retried(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    # A refused connection certainly started nothing, so it is safe to resend.
    route = router.post("/v2/droplets/1/actions").mock(
        side_effect=[
            httpx.ConnectError("Connection refused"),
            httpx.Response(201, json={"action": action_json(4)}),
        ]
    )

    assert (await client.post_droplet_action(1, "reboot")).id == 4
    assert route.call_count == 2


async def test_429_on_an_action_pauses_the_budget_and_does_not_use_attempts(
    make_client: Callable[..., DigitalOceanClient],
    router: respx.MockRouter,
    budget: RecordingBudget,
) -> None:
    do = make_client(retry_attempts=1)
    route = router.post("/v2/droplets/1/actions").mock(
        side_effect=[
            httpx.Response(
                429,
                json={"id": "too_many_requests", "message": "API Rate limit exceeded."},
                headers={"Retry-After": "7"},
            ),
            httpx.Response(201, json={"action": action_json(5)}),
        ]
    )

    assert (await do.post_droplet_action(1, "reboot")).id == 5
    assert route.call_count == 2
    assert budget.pauses == [7.0]
    assert budget.acquired == 2


# ------------------------------------------------------------------- get action


async def test_get_action_parses_a_completed_action(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    router.get("/v2/actions/77").respond(
        200,
        json={
            "action": action_json(
                77, status="completed", completed_at="2026-12-02T10:00:42Z", type="shutdown"
            )
        },
    )

    action = await client.get_action(77)

    assert action is not None
    assert (action.status, action.type) == ("completed", "shutdown")
    assert action.completed_at == datetime(2026, 12, 2, 10, 0, 42, tzinfo=UTC)
    assert await client.get_action_status(77) == "completed"  # the old call still works


async def test_get_action_404_is_none(client: DigitalOceanClient, router: respx.MockRouter) -> None:
    router.get("/v2/actions/5").respond(404, json={"id": "not_found", "message": "nope"})

    assert await client.get_action(5) is None


async def test_get_action_tolerates_missing_optional_fields(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    router.get("/v2/actions/5").respond(
        200, json={"action": {"id": "5", "status": "errored", "started_at": "not a date"}}
    )

    assert await client.get_action(5) == DropletAction(
        id=5,
        type="unknown",
        status="errored",
        started_at=None,
        completed_at=None,
        resource_id=None,
    )


async def test_429_on_get_action_waits_until_ratelimit_reset(
    client: DigitalOceanClient, router: respx.MockRouter, budget: RecordingBudget
) -> None:
    router.get("/v2/actions/6").mock(
        side_effect=[
            httpx.Response(
                429,
                json={"id": "too_many_requests", "message": "API Rate limit exceeded."},
                headers={"ratelimit-remaining": "0", "ratelimit-reset": "0"},
            ),
            httpx.Response(200, json={"action": action_json(6)}),
        ]
    )

    action = await client.get_action(6)

    assert action is not None and action.id == 6
    assert budget.pauses == [1.0]  # a reset in the past still waits a moment


# ------------------------------------------------------------------ list actions


async def test_list_droplet_actions_reads_one_page_newest_first(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    route = router.get("/v2/droplets/101/actions").respond(
        200,
        json={
            "actions": [
                action_json(10, type="create", status="completed"),
                action_json(30, type="rebuild"),
                action_json(20, type="reboot", status="completed"),
            ],
            "links": {"pages": {"next": f"{BASE}/v2/droplets/101/actions?page=2&per_page=3"}},
            "meta": {"total": 7},
        },
    )

    actions = await client.list_droplet_actions(101, per_page=3)

    assert [(a.id, a.type) for a in actions] == [(30, "rebuild"), (20, "reboot"), (10, "create")]
    assert route.call_count == 1  # only the first page, whatever follows
    params = route.calls.last.request.url.params
    assert (params["page"], params["per_page"]) == ("1", "3")


async def test_list_droplet_actions_caps_per_page(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    route = router.get("/v2/droplets/1/actions").respond(200, json={"actions": []})

    assert await client.list_droplet_actions(1, per_page=1000) == []
    assert route.calls.last.request.url.params["per_page"] == "200"


async def test_list_droplet_actions_of_a_missing_droplet_is_not_found(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    router.get("/v2/droplets/9/actions").respond(404, json={"id": "not_found", "message": "x"})

    with pytest.raises(DigitalOceanNotFoundError):
        await client.list_droplet_actions(9)


async def test_list_droplet_actions_retries_5xx(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    route = router.get("/v2/droplets/1/actions").mock(
        side_effect=[
            httpx.Response(502, text="bad gateway"),
            httpx.Response(200, json={"actions": [action_json(1)]}),
        ]
    )

    assert [a.id for a in await client.list_droplet_actions(1)] == [1]
    assert route.call_count == 2


# ------------------------------------------------------------------------ delete


async def test_delete_204_is_true(
    client: DigitalOceanClient, router: respx.MockRouter, responses: list[tuple[str, int]]
) -> None:
    route = router.delete("/v2/droplets/101").respond(204)

    assert await client.delete_droplet(101) is True
    assert route.call_count == 1
    assert responses == [("delete_droplet", 204)]


async def test_delete_404_is_false(client: DigitalOceanClient, router: respx.MockRouter) -> None:
    router.delete("/v2/droplets/101").respond(404, json={"id": "not_found", "message": "gone"})

    assert await client.delete_droplet(101) is False


async def test_delete_retries_5xx_and_a_lost_answer_ends_as_already_gone(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    route = router.delete("/v2/droplets/3").mock(
        side_effect=[
            httpx.ReadTimeout("slow"),  # DigitalOcean deleted it, the answer was lost
            httpx.Response(404, json={"id": "not_found", "message": "gone"}),
        ]
    )

    assert await client.delete_droplet(3) is False
    assert route.call_count == 2


async def test_delete_429_waits_then_deletes(
    client: DigitalOceanClient, router: respx.MockRouter, budget: RecordingBudget
) -> None:
    router.delete("/v2/droplets/3").mock(
        side_effect=[
            httpx.Response(
                429,
                json={"id": "too_many_requests", "message": "slow"},
                headers={"Retry-After": "2"},
            ),
            httpx.Response(204),
        ]
    )

    assert await client.delete_droplet(3) is True
    assert budget.pauses == [2.0]


async def test_delete_401_is_the_accounts_trouble(
    client: DigitalOceanClient, router: respx.MockRouter
) -> None:
    router.delete("/v2/droplets/3").respond(
        401, json={"id": "unauthorized", "message": "Unable to authenticate you"}
    )

    with pytest.raises(DigitalOceanAuthError, match="API token"):
        await client.delete_droplet(3)


# ------------------------------------------------------------- malformed answers


@pytest.mark.parametrize(
    ("method", "path", "call", "response"),
    [
        ("POST", "/v2/droplets/1/actions", ("post_droplet_action", 1, "reboot"), {"action": 3}),
        ("POST", "/v2/droplets/1/actions", ("post_droplet_action", 1, "reboot"), {"nope": {}}),
        ("POST", "/v2/droplets/1/actions", ("post_droplet_action", 1, "reboot"), "text"),
        ("GET", "/v2/actions/1", ("get_action", 1), {"action": {"id": 1}}),
        ("GET", "/v2/actions/1", ("get_action", 1), {"action": {"status": "completed"}}),
        ("GET", "/v2/actions/1", ("get_action", 1), [1, 2]),
        ("GET", "/v2/droplets/1/actions", ("list_droplet_actions", 1), {"actions": {"a": 1}}),
        ("GET", "/v2/droplets/1/actions", ("list_droplet_actions", 1), {"actions": [{"id": None}]}),
        ("GET", "/v2/droplets/1/actions", ("list_droplet_actions", 1), {}),
    ],
)
async def test_malformed_answers_are_digitalocean_errors_not_crashes(
    client: DigitalOceanClient,
    router: respx.MockRouter,
    method: str,
    path: str,
    call: tuple[Any, ...],
    response: Any,
) -> None:
    status = 201 if method == "POST" else 200
    if isinstance(response, str):
        router.route(method=method, path=path).respond(status, text=response)
    else:
        router.route(method=method, path=path).respond(status, json=response)
    name, *args = call

    with pytest.raises(DigitalOceanError) as caught:
        await getattr(client, name)(*args)

    assert isinstance(caught.value, DigitalOceanUnavailableError)
    assert TOKEN not in caught.value.message


def test_droplet_status_off_is_kept() -> None:
    droplet = Droplet.from_api({"id": 1, "status": "off"})
    assert droplet.status == "off"
