"""What operators rely on: metrics, JSON logs with request ids, no secrets in logs, readiness."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mocks.catalog_service.data import PLAN_BAD_PRICE_ID
from mocks.digitalocean import FakeConfig
from mocks.digitalocean import create_app as create_fake_do
from order_service.logging_setup import JSONFormatter, configure_logging
from tests.conftest import API_KEY, INTERNAL, JWT_SECRET, auth, make_settings, make_token
from tests.helpers import assert_error, create_order, order_body, pay
from tests.integration.test_provisioning import running_service
from tests.servers import serve
from tests.webhooks import WEBHOOKS, Receiver, eventually, register

ORDERS = "/api/v1/orders"
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")
UNREACHABLE_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:1/x"  # port 1 refuses


# ------------------------------------------------------------------ /metrics


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text page, keyed by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(page: dict[Any, float], name: str, **labels: str) -> float:
    return page.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient) -> tuple[str, dict[Any, float]]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text, samples(response.text)


async def test_metrics_count_requests_by_route_template_and_business_events(
    client: httpx.AsyncClient,
) -> None:
    _, before = await scrape(client)
    order = await create_order(client, "metrics-user")
    assert (await client.get(f"{ORDERS}/{order['id']}", headers=auth("metrics-user"))).is_success
    assert (
        await client.get(f"{ORDERS}/{order['id']}", headers=auth("intruder"))
    ).status_code == 403
    assert (await pay(client, order["id"])).status_code == 200
    assert (await client.get("/no/such/route")).status_code == 404

    text, after = await scrape(client)

    def grew(name: str, by: float, **labels: str) -> None:
        delta = value(after, name, **labels) - value(before, name, **labels)
        assert delta == by, (name, labels, delta)

    requests = "order_service_http_requests_total"
    route = "/api/v1/orders/{order_id}"
    grew(requests, 1, method="POST", route="/api/v1/orders", status="201")
    grew(requests, 1, method="GET", route=route, status="200")
    grew(requests, 1, method="GET", route=route, status="403")
    grew(
        requests,
        1,
        method="POST",
        route="/api/v1/internal/orders/{order_id}/payment-status",
        status="200",
    )
    grew(requests, 1, method="GET", route="<unmatched>", status="404")
    grew("order_service_orders_created_total", 1)
    transitions = "order_service_status_transitions_total"
    grew(transitions, 1, from_status="PENDING_PAYMENT", to_status="PAID")
    grew(transitions, 1, from_status="PAID", to_status="PROVISIONING")
    assert (
        value(after, "order_service_http_request_duration_seconds_count", method="GET", route=route)
        > 0
    )
    # Label values are bounded: route templates, never a concrete id or path.
    assert order["id"] not in text
    assert "/no/such/route" not in text
    assert 'route="/api/v1/orders/{order_id}"' in text


async def test_an_idempotent_replay_is_not_counted_as_a_new_order(
    client: httpx.AsyncClient,
) -> None:
    _, before = await scrape(client)
    headers = {**auth("metrics-user"), "Idempotency-Key": "metrics-replay"}
    for _ in range(3):
        response = await client.post(ORDERS, json=order_body(), headers=headers)
        assert response.status_code == 201
    _, after = await scrape(client)
    assert (
        value(after, "order_service_orders_created_total")
        - value(before, "order_service_orders_created_total")
        == 1
    )


async def test_metrics_need_no_credentials_and_are_not_in_the_api_document(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert "# TYPE order_service_http_requests_total counter" in response.text
    assert "/metrics" not in (await client.get("/openapi.json")).json()["paths"]


# ------------------------------------------------------------------ JSON logs


@contextlib.contextmanager
def json_logging() -> Iterator[None]:
    """configure_logging("json") for the duration, then the logging set-up as it was.

    configure_logging replaces the root handlers with one StreamHandler bound
    to the sys.stdout of the moment, which under capsys is the capture.
    """
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    names = ("uvicorn", "uvicorn.error", "uvicorn.access")
    saved = {name: _logger_state(logging.getLogger(name)) for name in names}
    configure_logging("json", "INFO")
    try:
        yield
    finally:
        root.handlers[:], level = saved_root
        root.setLevel(level)
        for name, state in saved.items():
            _restore_logger(logging.getLogger(name), state)


def _logger_state(logger: logging.Logger) -> tuple[Any, ...]:
    return (logger.handlers[:], logger.level, logger.propagate, logger.disabled)


def _restore_logger(logger: logging.Logger, state: tuple[Any, ...]) -> None:
    logger.handlers[:], level, logger.propagate, logger.disabled = state
    logger.setLevel(level)


def json_lines(output: str) -> list[dict[str, Any]]:
    lines = [line for line in output.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        entry = json.loads(line)  # every line is one JSON object
        assert isinstance(entry, dict), line
        parsed.append(entry)
    return parsed


def service_lines(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lines the service wrote (not the test client's own httpx line about its request)."""
    return [e for e in entries if "http://order-service/" not in e["message"]]


def access_lines(entries: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    return [
        e
        for e in entries
        if e["logger"] == "order_service.access" and e.get("request_id") == request_id
    ]


async def test_every_request_writes_exactly_one_json_access_line(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    order = await create_order(client, "log-user")
    capsys.readouterr()
    calls: list[tuple[str, str, dict[str, str], Any, int]] = [
        ("GET", "/api/v1/health", {}, None, 200),
        ("GET", ORDERS, {}, None, 401),
        ("POST", ORDERS, auth("log-user"), order_body(), 201),
        ("GET", f"{ORDERS}/{order['id']}", auth("log-user"), None, 200),
        ("GET", f"{ORDERS}/{order['id']}", auth("other"), None, 403),
        ("PUT", ORDERS, auth("log-user"), None, 405),
        ("GET", "/nowhere", {}, None, 404),
    ]
    with json_logging():
        responses = []
        for method, path, headers, body, status in calls:
            response = await client.request(method, path, headers=headers, json=body)
            assert response.status_code == status, response.text
            responses.append(response)
    entries = json_lines(capsys.readouterr().out)

    access = [e for e in entries if e["logger"] == "order_service.access"]
    assert len(access) == len(calls)
    for (method, path, _, _, status), response in zip(calls, responses, strict=True):
        request_id = response.headers["x-request-id"]
        (line,) = access_lines(entries, request_id)
        assert line["method"] == method
        assert line["path"] == path
        assert line["status"] == status
        assert isinstance(line["duration_ms"], int | float) and line["duration_ms"] >= 0
        assert line["level"] == "INFO"
        assert line["time"].endswith("Z")
        assert method in line["message"] and str(status) in line["message"]
    by_route = {line["route"] for line in access}
    assert "/api/v1/orders/{order_id}" in by_route and "<unmatched>" in by_route


async def test_every_line_of_a_request_carries_its_request_id(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    with json_logging():
        # The catalog sends a price of 100000.5: a contract fault, logged as a warning.
        response = await client.post(
            ORDERS,
            json=order_body(planId=PLAN_BAD_PRICE_ID),
            headers={**auth("log-user"), "X-Request-ID": "checkout-42"},
        )
    assert_error(response, 503, "CATALOG_SERVICE_UNAVAILABLE")
    entries = service_lines(json_lines(capsys.readouterr().out))
    warnings = [e for e in entries if e["logger"] == "order_service.catalog"]
    assert warnings and all(e["level"] == "WARNING" for e in warnings)
    assert {e.get("request_id") for e in entries} == {"checkout-42"}
    assert len(access_lines(entries, "checkout-42")) == 1


async def test_a_callers_request_id_is_used(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    with json_logging():
        response = await client.get(
            ORDERS, headers={**auth("log-user"), "X-Request-ID": "frontend:7f3a-2b.9_x"}
        )
    assert response.headers["x-request-id"] == "frontend:7f3a-2b.9_x"
    (line,) = access_lines(json_lines(capsys.readouterr().out), "frontend:7f3a-2b.9_x")
    assert line["status"] == 200


@pytest.mark.parametrize(
    "hostile",
    [
        b'evil\n{"level": "INFO", "message": "forged"}',
        b"split\r\nSet-Cookie: a=b",
        b"x" * 500,
        b'quote"and\\backslash',
    ],
    ids=["newline-json", "crlf", "500-chars", "quote"],
)
async def test_a_hostile_request_id_is_replaced_in_header_and_log(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str], hostile: bytes
) -> None:
    capsys.readouterr()
    with json_logging():
        response = await client.get("/api/v1/health", headers=[(b"X-Request-ID", hostile)])
    assert response.status_code == 200
    replaced = response.headers["x-request-id"]
    assert GENERATED_ID.match(replaced)
    output = capsys.readouterr().out
    entries = service_lines(json_lines(output))  # a newline did not forge a second line
    assert len(entries) == 1
    assert entries[0]["logger"] == "order_service.access"
    assert entries[0]["request_id"] == replaced
    assert hostile.decode("latin-1") not in output
    assert "forged" not in output


# ------------------------------------------------------------------ secrets


@contextlib.contextmanager
def every_log_record() -> Iterator[list[logging.LogRecord]]:
    """Every record any logger creates, at DEBUG, whatever handlers or levels say.

    Records are caught where they are made (the record factory), so a logger
    that does not propagate or has its own handlers is seen too.
    """
    records: list[logging.LogRecord] = []
    previous_factory = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous_factory(*args, **kwargs)
        records.append(record)
        return record

    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    saved = [(logger, logger.level, logger.disabled) for logger in loggers]
    disabled_below = logging.root.manager.disable
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
    logging.disable(logging.NOTSET)
    logging.setLogRecordFactory(factory)
    try:
        yield records
    finally:
        logging.setLogRecordFactory(previous_factory)
        logging.disable(disabled_below)
        for logger, level, disabled in saved:
            logger.setLevel(level)
            logger.disabled = disabled


def rendered(record: logging.LogRecord) -> str:
    """Everything of a record a log line could show: message, extras, traceback."""
    formatter = JSONFormatter()
    parts = [formatter.format(record), repr(record.__dict__)]
    if record.exc_info:
        parts.append(formatter.formatException(record.exc_info))
    return "\n".join(parts)


async def wait_terminal(service: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        response = await service.get(f"/api/v1/internal/orders/{order_id}", headers=INTERNAL)
        order = response.json()["data"]
        if order["status"] in ("ACTIVE", "FAILED"):
            return order
        assert time.monotonic() < deadline, order["provisioningTask"]
        await asyncio.sleep(0.05)


@pytest.fixture
async def fake_do() -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    async with (
        serve(create_fake_do(FakeConfig(boot_seconds=0.2))) as url,
        httpx.AsyncClient(base_url=url) as control,
    ):
        yield url, control


async def test_no_secret_ever_reaches_a_log_line(
    database: Any,
    catalog_app: Any,
    clean_db: None,
    fake_do: tuple[str, httpx.AsyncClient],
) -> None:
    do_url, control = fake_do
    do_token = "fake-do-token"
    good_jwt = make_token("secret-user")
    bad_jwt = make_token("secret-user", secret="a-different-secret-of-enough-length!")
    wrong_key = "wrong-internal-api-key-value"
    named_keys = {"ops-bot": "named-operator-key-one", "billing": "named-operator-key=two="}
    user = {"Authorization": f"Bearer {good_jwt}"}

    hook_receiver = Receiver(plan=[500])  # one failed attempt is logged too

    with every_log_record() as records:
        async with (
            serve(hook_receiver) as hook_url,
            running_service(
                database.url,
                do_url,
                catalog_app,
                digitalocean_api_token=do_token,
                internal_api_keys=",".join(f"{name}={key}" for name, key in named_keys.items()),
                webhook_retry_schedule="PT0.1S,PT0.1S",
            ) as service,
        ):
            # Webhook secrets: created, then rotated; deliveries signed with each.
            endpoint = await register(service, f"{hook_url}/hook")
            webhook_secrets = [endpoint["secret"]]
            rotated = await service.patch(
                f"{WEBHOOKS}/{endpoint['id']}", json={"rotateSecret": True}, headers=INTERNAL
            )
            webhook_secrets.append(rotated.json()["data"]["secret"])
            # Bad and misused credentials.
            for headers in (
                {"Authorization": f"Bearer {bad_jwt}"},
                {"Authorization": f"Bearer {API_KEY}"},
                {"Authorization": f"Basic {good_jwt}"},
                {"X-API-Key": good_jwt},
            ):
                assert_error(await service.get(ORDERS, headers=headers), 401, "UNAUTHORIZED")
            for key in (wrong_key, good_jwt, do_token):
                response = await service.get("/api/v1/internal/orders", headers={"X-API-Key": key})
                assert_error(response, 401, "UNAUTHORIZED")
            # A good token, a provisioning run to ACTIVE against the fake DO.
            created = await service.post(ORDERS, json=order_body(), headers=user)
            assert created.status_code == 201
            first = created.json()["data"]["id"]
            assert (await pay(service, first)).status_code == 200
            assert (await wait_terminal(service, first))["status"] == "ACTIVE"
            assert (await service.get(f"{ORDERS}/{first}", headers=user)).status_code == 200
            # DO stops accepting our token: 401 from DigitalOcean.
            (
                await control.post("/_fake/config", json={"tokens": ["another-token"]})
            ).raise_for_status()
            created = await service.post(ORDERS, json=order_body(), headers=user)
            second = created.json()["data"]["id"]
            # Paid with a named operator key (INTERNAL_API_KEYS): the actor names it.
            paid = await service.post(
                f"/api/v1/internal/orders/{second}/payment-status",
                json={"status": "PAID"},
                headers={"X-API-Key": named_keys["billing"]},
            )
            assert paid.status_code == 200, paid.text
            assert paid.json()["data"]["statusHistory"][1]["actor"] == "admin:billing"
            for key in named_keys.values():
                response = await service.get(
                    "/api/v1/internal/orders", headers={"X-API-Key": key[:-1]}
                )
                assert_error(response, 401, "UNAUTHORIZED")

            # v1.2 (SPEC §13): the account goes UNHEALTHY and the order waits, never FAILED.
            async def waiting() -> bool:
                response = await service.get(f"/api/v1/internal/orders/{second}", headers=INTERNAL)
                task = response.json()["data"]["provisioningTask"] or {}
                return task.get("errorCode") == "WAITING_FOR_CAPACITY"

            await eventually(waiting, what="the second order waits for a healthy account")
            failed = (
                await service.get(f"/api/v1/internal/orders/{second}", headers=INTERNAL)
            ).json()["data"]
            await eventually(
                lambda: any(r.status == 200 for r in hook_receiver.of_type("order.active")),
                what="order.active delivered",
            )

    assert failed["status"] == "PROVISIONING"
    assert failed["provisioningTask"]["errorCode"] == "WAITING_FOR_CAPACITY"
    assert do_token not in json.dumps(failed)

    # The capture saw everything, DEBUG included: the session really was logged.
    names = {record.name for record in records}
    assert "order_service.access" in names
    assert any(
        r.name == "order_service.digitalocean" and r.levelno == logging.DEBUG for r in records
    )
    assert any("HTTP 401" in r.getMessage() for r in records if r.levelno >= logging.WARNING)
    assert any(r.name.startswith("httpx") for r in records)

    secrets = {
        "good JWT": good_jwt,
        "good JWT signature": good_jwt.rsplit(".", 1)[1],
        "bad JWT": bad_jwt,
        "JWT secret": JWT_SECRET,
        "internal API key": API_KEY,
        "wrong API key": wrong_key,
        "DigitalOcean token": do_token,
        **{f"named API key {name}": key for name, key in named_keys.items()},
        **{f"webhook secret {n}": secret for n, secret in enumerate(webhook_secrets)},
        # The part the library actually keys the HMAC with, without the prefix.
        **{
            f"webhook secret {n} body": secret.removeprefix("whsec_")
            for n, secret in enumerate(webhook_secrets)
        },
    }
    for record in records:
        text = rendered(record)
        for what, secret in secrets.items():
            assert secret not in text, f"{what} leaked in a {record.name} log record: {text}"


# ------------------------------------------------------------------ health


async def test_liveness_needs_no_credentials(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"data": {"status": "ok"}}
    assert response.headers["x-request-id"]


async def test_ready_with_the_database_up(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/health/ready")
    assert response.status_code == 200
    assert response.json() == {"data": {"status": "ready", "database": "ok"}}


async def test_not_ready_when_the_database_is_unreachable(catalog_app: Any) -> None:
    from order_service.app import create_app

    app = create_app(
        make_settings(UNREACHABLE_DATABASE),
        catalog_transport=httpx.ASGITransport(app=catalog_app),
        start_provisioner=False,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            started = time.monotonic()
            ready = await client.get("/api/v1/health/ready")
            elapsed = time.monotonic() - started
            live = await client.get("/api/v1/health")

    error = assert_error(ready, 503, "NOT_READY")
    assert set(ready.json()["error"]) == {"code", "message"}
    assert "127.0.0.1" not in error["message"] and "postgres" not in ready.text
    assert ready.headers["x-request-id"]
    assert elapsed < 2.5  # answered within the readiness timeout
    assert live.status_code == 200  # liveness does not depend on the database
