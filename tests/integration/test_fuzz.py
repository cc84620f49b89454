"""Schema-driven fuzzing of every operation with schemathesis + hypothesis.

The app runs for real (lifespan, test database, mock catalog) behind Starlette's
TestClient, which drives it on its own event loop in a thread, so hypothesis'
synchronous loop does not fight the session event loop of pytest-asyncio.
Valid credentials are put on every request so the fuzzing reaches past auth.

Asserted for every generated request (valid and invalid ones):
- never a 5xx;
- every 4xx body is exactly the error envelope;
- every 2xx body validates against the route's declared response model, both
  as pydantic sees it and as the OpenAPI document's JSON Schema says.
"""

from __future__ import annotations

import functools
import itertools
import warnings
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from schemathesis.specs.openapi.checks import response_schema_conformance

from order_service.config import Settings

with warnings.catch_warnings():
    # Starlette would like httpx2 for its TestClient; httpx works the same here.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient
from tests.conftest import INTERNAL, auth
from tests.helpers import order_body

EXAMPLES_PER_MODE = 40
FUZZ_USER = "fuzz-user"
VALID_HEADERS = {**auth(FUZZ_USER), **INTERNAL}


@functools.cache
def _schema_and_routes() -> tuple[Any, dict[tuple[str, str], APIRoute]]:
    """Built once per run: the OpenAPI document does not depend on the settings (the
    export's stale test holds it to docs/openapi.json), and building it cost ~1.4 s per
    operation, a fifth of the fuzz run's time."""
    from order_service.app import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings("sqlite+aiosqlite://"), start_provisioner=False)
    schema = schemathesis.openapi.from_dict(app.openapi())
    routes = {
        (method, route.path): route for route in _api_routes(app.routes) for method in route.methods
    }
    return schema, routes


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # include_router() (mounted without prefix)
            yield from _api_routes(route.original_router.routes)


def _operations() -> list[tuple[str, str]]:
    schema, _ = _schema_and_routes()
    found = []
    for result in schema.get_all_operations():
        operation = result.ok()
        found.append((operation.method.upper(), operation.path))
    return found


OPERATIONS = _operations()


@pytest.fixture(scope="module")
def fuzz_volume(request: pytest.FixtureRequest) -> Iterator[dict[str, Counter[int]]]:
    """Requests sent, by operation and answer status; reported at the end of the module."""
    volume: dict[str, Counter[int]] = {}
    yield volume
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    line = (
        f"fuzz: {sum(c.total() for c in volume.values())} requests over {len(volume)} operations "
        f"({EXAMPLES_PER_MODE} valid + {EXAMPLES_PER_MODE} invalid examples max per operation)"
    )
    if reporter is None or capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        reporter.write_line(line)
        for label, statuses in sorted(volume.items()):
            by_status = ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items()))
            reporter.write_line(f"  {statuses.total():4d}  {label}  ({by_status})")


@pytest.fixture
def live_client(settings: Settings, catalog_app: Any, clean_db: None) -> Iterator[TestClient]:
    from mocks.digitalocean import FakeConfig
    from mocks.digitalocean import create_app as create_fake_do
    from order_service.app import create_app

    # Both neighbours in process: a 5xx here is the service's, never an unreachable
    # neighbour's (an order naming a region asks DO's lists; a new DO account's token
    # is checked at DO).
    app = create_app(
        settings,
        catalog_transport=httpx.ASGITransport(app=catalog_app),
        digitalocean_transport=httpx.ASGITransport(app=create_fake_do(FakeConfig())),
        start_provisioner=False,
    )
    # As a context manager the TestClient runs the lifespan (engine, clients).
    with TestClient(app, base_url="http://order-service", raise_server_exceptions=False) as client:
        yield client


def _seed_orders(client: TestClient) -> list[str]:
    """A few real orders, so generated ids sometimes name one (in several states)."""
    ids = []
    for _ in range(3):
        response = client.post("/api/v1/orders", json=order_body(), headers=auth(FUZZ_USER))
        assert response.status_code == 201, response.text
        ids.append(response.json()["data"]["id"])
    paid = client.post(
        f"/api/v1/internal/orders/{ids[1]}/payment-status",
        json={"status": "PAID"},
        headers=INTERNAL,
    )
    assert paid.status_code == 200, paid.text
    return ids


def _make_active(database_url: str, order_id: str) -> None:
    """Fast-forward a paid order to ACTIVE with a droplet (what the provisioner would do)."""
    import asyncio
    import uuid
    from datetime import timedelta

    from sqlalchemy import update

    from order_service.db import create_engine, utcnow
    from order_service.orders.models import Order
    from order_service.provisioning.models import ProvisioningTask

    async def run() -> None:
        engine = create_engine(database_url)
        now = utcnow()
        async with engine.begin() as connection:
            await connection.execute(
                update(Order)
                .where(Order.id == uuid.UUID(order_id))
                .values(
                    status="ACTIVE",
                    activated_at=now,
                    expires_at=now + timedelta(days=30),
                )
            )
            await connection.execute(
                update(ProvisioningTask)
                .where(ProvisioningTask.order_id == uuid.UUID(order_id))
                .values(status="SUCCESS", droplet_id=4242, droplet_status="active")
            )
        await engine.dispose()

    asyncio.run(run())


def _seed_world(client: TestClient, database_url: str) -> dict[str, list[str]]:
    """Ids for every path parameter, naming real rows in useful states.

    Orders: unpaid, provisioning and ACTIVE; on the ACTIVE one a pending
    renewal and a pending action; a webhook endpoint with a delivery (a ping);
    two SSH keys of the fuzzing user.
    Each operation is fuzzed with these ids as well as generated ones, so the
    requests get past "not found" into the state rules.
    """
    order_ids = _seed_orders(client)
    active = order_ids[1]
    _make_active(database_url, active)
    renewal = client.post(
        f"/api/v1/orders/{active}/renewals", json={"periods": 1}, headers=auth(FUZZ_USER)
    )
    assert renewal.status_code == 201, renewal.text
    action = client.post(
        f"/api/v1/orders/{active}/actions", json={"type": "REBOOT"}, headers=auth(FUZZ_USER)
    )
    assert action.status_code == 202, action.text
    webhook = client.post(
        "/api/v1/internal/webhooks",
        json={"url": "http://127.0.0.1:9/hook", "events": ["*"]},
        headers=INTERNAL,
    )
    assert webhook.status_code == 201, webhook.text
    webhook_id = webhook.json()["data"]["id"]
    assert client.post(f"/api/v1/internal/webhooks/{webhook_id}/ping", headers=INTERNAL).is_success
    deliveries = client.get(f"/api/v1/internal/webhooks/{webhook_id}/deliveries", headers=INTERNAL)
    ssh_keys = [
        client.post(
            "/api/v1/ssh-keys",
            json={"name": f"fuzz {i}", "publicKey": _public_key()},
            headers=auth(FUZZ_USER),
        )
        for i in range(2)
    ]
    assert all(key.status_code == 201 for key in ssh_keys), [key.text for key in ssh_keys]
    return {
        "order_id": order_ids,
        "renewal_id": [renewal.json()["data"]["id"]],
        "action_id": [action.json()["data"]["id"]],
        "webhook_id": [webhook_id],
        "delivery_id": [d["id"] for d in deliveries.json()["data"]],
        "ssh_key_id": [key.json()["data"]["id"] for key in ssh_keys],
    }


def _public_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()


def _send(client: TestClient, kwargs: dict[str, Any]) -> httpx.Response:
    headers = {k: v for k, v in kwargs["headers"].items() if k.lower() not in _AUTH_HEADERS}
    headers.update(VALID_HEADERS)
    for name, value in headers.items():
        # A header the client cannot even put on the wire tells nothing about the server.
        assume(isinstance(value, str) and value.isascii() and "\n" not in value)
        assume(name.isascii() and name.strip() == name and name)
    request: dict[str, Any] = {
        "method": kwargs["method"],
        "url": kwargs["url"],
        "headers": headers,
        "params": kwargs.get("params") or None,
        "cookies": kwargs.get("cookies") or None,
    }
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    elif "data" in kwargs:
        data = kwargs["data"]
        request["content" if isinstance(data, str | bytes) else "data"] = data
    elif "content" in kwargs:
        request["content"] = kwargs["content"]
    return client.request(**request)


_AUTH_HEADERS = {"authorization", "x-api-key"}
_PATH_PARAMETERS = (
    "order_id",
    "renewal_id",
    "action_id",
    "webhook_id",
    "delivery_id",
    "ssh_key_id",
)


def _assert_envelope(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict) and {"code", "message"} <= set(error), body
    assert set(error) <= {"code", "message", "details"}, body
    assert isinstance(error["code"], str) and error["code"].isupper(), body
    assert isinstance(error["message"], str) and error["message"], body
    if "details" in error:
        assert isinstance(error["details"], dict), body


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_fuzz_operation(
    live_client: TestClient,
    settings: Settings,
    fuzz_volume: dict[str, Counter[int]],
    method: str,
    path: str,
) -> None:
    schema, routes = _schema_and_routes()
    operation = schema[path][method]
    route = routes[(method, path)]
    names = [name for name in _PATH_PARAMETERS if "{" + name + "}" in path]
    world = _seed_world(live_client, settings.database_url) if names else {}
    label = f"{method} {path}"
    sent = fuzz_volume.setdefault(label, Counter())

    def strategy(mode: schemathesis.GenerationMode) -> Any:
        strategies = [operation.as_strategy(mode)]
        if names:
            # Every combination of seeded ids for the path's parameters.
            for combination in itertools.product(*(world[name] for name in names)):
                known = dict(zip(names, combination, strict=True))
                strategies.append(operation.as_strategy(mode, path_parameters=known))
        return st.one_of(strategies)

    adapter = TypeAdapter(route.response_model) if route.response_model is not None else None

    def check(case: Any) -> None:
        response = _send(live_client, case.as_transport_kwargs(base_url="http://order-service"))
        sent[response.status_code] += 1
        summary = (
            f"{case.method} {response.request.url} -> {response.status_code}: {response.text[:500]}"
        )
        assert response.status_code < 500, summary
        assert response.headers.get("x-request-id"), summary
        if 400 <= response.status_code < 500:
            _assert_envelope(response)
        elif 200 <= response.status_code < 300:
            if adapter is not None:
                adapter.validate_json(response.content)
            case.validate_response(response, checks=[response_schema_conformance])

    declared = schema.raw_schema["paths"][path][method.lower()]
    modes = [schemathesis.GenerationMode.POSITIVE]
    if declared.get("parameters") or declared.get("requestBody"):
        # Something to get wrong: invalid inputs too (health has nothing to negate).
        modes.append(schemathesis.GenerationMode.NEGATIVE)
    for mode in modes:
        run = settings_for_fuzz(given(case=strategy(mode))(check))
        run()
    assert sent.total() > 0


def settings_for_fuzz(test: Any) -> Any:
    return settings(
        max_examples=EXAMPLES_PER_MODE,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
    )(test)
