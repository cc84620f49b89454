"""HTTP face of the fake DigitalOcean API v2 (see README.md next to this file).

All state lives in a :class:`~mocks.digitalocean.state.FakeState` on
``app.state.fake``; the router below is stateless, so any number of apps can
live in one process without sharing anything.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from pydantic import ValidationError

from mocks.digitalocean import offerings
from mocks.digitalocean.state import (
    DEFAULT_PER_PAGE,
    MAX_PER_PAGE,
    ApiError,
    FakeConfig,
    FakeState,
    RouteKind,
    not_found,
    unprocessable,
)

# An operation gets the state and the caller's account name, and answers
# (status, JSON body), or (204, None) for an empty answer.
Operation = Callable[[FakeState, str], Awaitable[tuple[int, dict[str, Any] | None]]]

router = APIRouter()


def _fake(request: Request) -> FakeState:
    return request.app.state.fake


def _base_url(request: Request) -> str:
    # Links point back at this fake (not api.digitalocean.com) so that clients
    # following them stay on it.
    return str(request.base_url).rstrip("/")


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    # orjson + a prebuilt Response skips FastAPI's encoder: the fake must stay cheap
    # under benchmark load.
    if body is None:  # 204: no body, no content type
        return Response(status_code=status, headers=headers)
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


async def _serve(request: Request, kind: RouteKind | None, operation: Operation) -> Response:
    """Shared path of every /v2 route: admission, the operation, the log, latency, headers."""
    fake = _fake(request)
    caller = fake.identify(request.headers.get("authorization"))
    headers: dict[str, str] = {}
    body: dict[str, Any] | None
    try:
        headers = fake.admit_caller(caller, kind)
        assert caller.account is not None  # admitted: the token belongs to an account
        status, body = await operation(fake, caller.account)
    except ApiError as error:
        headers.update(error.headers)
        status, body = error.status, error.body
    fake.log_request(request.method, request.url.path, kind, caller, status)
    if fake.config.latency_ms > 0:
        await asyncio.sleep(fake.config.latency_ms / 1000)
    return _json(status, body, headers)


async def _read_json(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ApiError(400, "bad_request", f"The request body is not valid JSON: {error}") from None


def _int_query(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise unprocessable(f"{name} must be an integer.") from None


def _int_path(raw: str) -> int:
    # A non-numeric id can never name a resource: DO answers 404, not a schema error.
    try:
        return int(raw)
    except ValueError:
        raise not_found() from None


# -- /v2 -----------------------------------------------------------------------


def _page_args(request: Request) -> dict[str, Any]:
    return {
        "page": _int_query(request, "page", 1),
        "per_page": _int_query(request, "per_page", DEFAULT_PER_PAGE),
        "base_url": _base_url(request),
    }


@router.post("/v2/droplets")
async def create_droplet(request: Request) -> Response:
    async def operation(fake: FakeState, account: str) -> tuple[int, dict[str, Any]]:
        payload = await _read_json(request)
        return 202, fake.create_droplet(payload, base_url=_base_url(request), account=account)

    return await _serve(request, "create", operation)


@router.get("/v2/droplets")
async def list_droplets(request: Request) -> Response:
    async def operation(fake: FakeState, account: str) -> tuple[int, dict[str, Any]]:
        tag_name = request.query_params.get("tag_name") or None
        return 200, fake.list_droplets(tag_name=tag_name, account=account, **_page_args(request))

    return await _serve(request, "list", operation)


@router.get("/v2/droplets/{droplet_id}")
async def get_droplet(request: Request, droplet_id: str) -> Response:
    async def operation(fake: FakeState, account: str) -> tuple[int, dict[str, Any]]:
        return 200, fake.get_droplet(_int_path(droplet_id), account)

    return await _serve(request, "get", operation)


@router.delete("/v2/droplets/{droplet_id}")
async def delete_droplet(request: Request, droplet_id: str) -> Response:
    async def operation(fake: FakeState, account: str) -> tuple[int, dict[str, Any] | None]:
        fake.delete_droplet(_int_path(droplet_id), account)
        return 204, None

    return await _serve(request, "delete_droplet", operation)


@router.post("/v2/droplets/{droplet_id}/actions")
async def post_droplet_action(request: Request, droplet_id: str) -> Response:
    async def operation(fake: FakeState, account: str) -> tuple[int, dict[str, Any] | None]:
        target = _int_path(droplet_id)
        payload = await _read_json(request)
        return 201, fake.post_droplet_action(target, payload, account)

    return await _serve(request, "post_action", operation)


@router.get("/v2/droplets/{droplet_id}/actions")
async def list_droplet_actions(request: Request, droplet_id: str) -> Response:
    async def operation(fake: FakeState, account: str) -> tuple[int, dict[str, Any] | None]:
        body = fake.list_droplet_actions(
            _int_path(droplet_id), max_per_page=MAX_PER_PAGE, account=account, **_page_args(request)
        )
        return 200, body

    return await _serve(request, "list_actions", operation)


@router.get("/v2/actions/{action_id}")
async def get_action(request: Request, action_id: str) -> Response:
    async def operation(fake: FakeState, account: str) -> tuple[int, dict[str, Any]]:
        return 200, fake.get_action(_int_path(action_id), account)

    return await _serve(request, "action", operation)


@router.get("/v2/account")
async def get_account(request: Request) -> Response:
    async def operation(fake: FakeState, account: str) -> tuple[int, dict[str, Any]]:
        return 200, fake.get_account(account)

    return await _serve(request, "account", operation)


@router.get("/v2/account/keys")
async def list_keys(request: Request) -> Response:
    async def operation(fake: FakeState, account: str) -> tuple[int, dict[str, Any]]:
        return 200, fake.list_keys(account, **_page_args(request))

    return await _serve(request, "list_keys", operation)


@router.post("/v2/account/keys")
async def create_key(request: Request) -> Response:
    async def operation(fake: FakeState, account: str) -> tuple[int, dict[str, Any]]:
        payload = await _read_json(request)
        return 201, fake.create_key(payload, account)

    return await _serve(request, "create_key", operation)


@router.get("/v2/account/keys/{key}")
async def get_key(request: Request, key: str) -> Response:
    async def operation(fake: FakeState, account: str) -> tuple[int, dict[str, Any]]:
        return 200, fake.get_key(key, account)

    return await _serve(request, "get_key", operation)


@router.get("/v2/regions")
async def list_regions(request: Request) -> Response:
    async def operation(fake: FakeState, account: str) -> tuple[int, dict[str, Any]]:
        return 200, offerings.regions_page(fake.config, **_page_args(request))

    return await _serve(request, "regions", operation)


@router.get("/v2/sizes")
async def list_sizes(request: Request) -> Response:
    async def operation(fake: FakeState, account: str) -> tuple[int, dict[str, Any]]:
        return 200, offerings.sizes_page(fake.config, **_page_args(request))

    return await _serve(request, "sizes", operation)


@router.api_route(
    "/v2/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
)
async def unknown_v2_route(request: Request, path: str) -> Response:
    # Still authenticated and rate limited, then a DO-shaped 404 instead of
    # FastAPI's {"detail": ...}.
    async def operation(fake: FakeState, account: str) -> tuple[int, dict[str, Any]]:
        raise not_found()

    return await _serve(request, None, operation)


# -- control plane (no auth, not counted, not rate limited) -------------------


@router.get("/health")
async def health() -> Response:
    return _json(200, {"status": "ok"})


@router.get("/_fake/config")
async def get_config(request: Request) -> Response:
    return _json(200, _fake(request).config.model_dump())


@router.post("/_fake/config")
async def update_config(request: Request) -> Response:
    try:
        changes = orjson.loads(await request.body())
    except orjson.JSONDecodeError as error:
        return _json(422, {"detail": f"invalid JSON: {error}"})
    if not isinstance(changes, dict):
        return _json(422, {"detail": "expected a JSON object of config fields"})
    try:
        config = _fake(request).update_config(changes)
    except ValidationError as error:
        return _json(422, {"detail": error.errors(include_url=False, include_context=False)})
    return _json(200, config.model_dump())


@router.post("/_fake/reset")
async def reset(request: Request) -> Response:
    fake = _fake(request)
    fake.reset()
    return _json(200, {"status": "reset", "config": fake.config.model_dump()})


@router.get("/_fake/stats")
async def stats(request: Request) -> Response:
    return _json(200, _fake(request).stats())


async def _control_body(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError as error:
        raise unprocessable(f"invalid JSON: {error}") from None
    if not isinstance(body, dict):
        raise unprocessable("expected a JSON object")
    return body


# A control operation answers (status, JSON body); an ApiError becomes its answer.
ControlOperation = Callable[[], Awaitable[tuple[int, dict[str, Any]]]]


async def _control(operation: ControlOperation) -> Response:
    try:
        status, body = await operation()
    except ApiError as error:
        return _json(error.status, error.body)
    return _json(status, body)


_SEED_FIELDS = frozenset({"name", "region", "size", "image", "tags", "status", "account"})


@router.post("/_fake/droplets")
async def add_droplet(request: Request) -> Response:
    """Seed a droplet (e.g. tagged ``order-<id>`` before the order is paid)."""

    async def operation() -> tuple[int, dict[str, Any]]:
        body = await _control_body(request)
        unknown = set(body) - _SEED_FIELDS
        if unknown:
            raise unprocessable(f"unknown fields: {sorted(unknown)}")
        return 201, _fake(request).add_droplet(**body)

    return await _control(operation)


@router.get("/_fake/droplets/{droplet_id}")
async def droplet_details(request: Request, droplet_id: str) -> Response:
    """A droplet with its account, SSH key fingerprints and user_data (not in DO's JSON)."""

    async def operation() -> tuple[int, dict[str, Any]]:
        return 200, _fake(request).droplet_details(_int_path(droplet_id))

    return await _control(operation)


@router.post("/_fake/droplets/{droplet_id}/status")
async def set_droplet_status(request: Request, droplet_id: str) -> Response:
    """Force a droplet's status, e.g. ``{"status": "errored"}``."""

    async def operation() -> tuple[int, dict[str, Any]]:
        body = await _control_body(request)
        status = body.get("status")
        if not isinstance(status, str):
            raise unprocessable("status is required")
        return 200, _fake(request).set_droplet_status(_int_path(droplet_id), status)

    return await _control(operation)


@router.post("/_fake/accounts/{name}")
async def update_account(request: Request, name: str) -> Response:
    """Change one account's droplet limit at run time: ``{"droplet_limit": 3}``."""

    async def operation() -> tuple[int, dict[str, Any]]:
        return 200, _fake(request).update_account(name, await _control_body(request))

    return await _control(operation)


@router.get("/_fake/requests")
async def requests_since(request: Request) -> Response:
    """The logged /v2 requests after ``since`` (a ``seq``), and the next ``since``."""

    async def operation() -> tuple[int, dict[str, Any]]:
        return 200, _fake(request).requests_since(_int_query(request, "since", 0))

    return await _control(operation)


def create_app(
    config: FakeConfig | None = None,
    *,
    clock: Callable[[], float] | None = None,
    wall_clock: Callable[[], float] | None = None,
) -> FastAPI:
    """A fresh, independent fake. ``clock``/``wall_clock`` are for tests."""
    app = FastAPI(
        title="Fake DigitalOcean API v2",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    clocks: dict[str, Callable[[], float]] = {}
    if clock is not None:
        clocks["clock"] = clock
    if wall_clock is not None:
        clocks["wall_clock"] = wall_clock
    app.state.fake = FakeState(config, **clocks)
    app.include_router(router)
    return app
