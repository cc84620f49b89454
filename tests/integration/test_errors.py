"""Every error is the SPEC envelope, and every response carries X-Request-ID."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from order_service.orders import creation, service
from order_service.orders.models import IdempotencyKey, Order, StatusHistory
from tests.conftest import INTERNAL, auth
from tests.helpers import assert_error, create_order, order_body

ORDERS = "/api/v1/orders"
SECRET = "secret-internal-detail"
LIMIT = 64 * 1024


async def count(engine: AsyncEngine, model: type) -> int:
    async with engine.connect() as connection:
        return (await connection.execute(select(func.count()).select_from(model))).scalar_one()


def exact_envelope(response: httpx.Response) -> dict[str, Any]:
    """The body is {"error": {"code", "message", "details"?}} and nothing else."""
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) <= {"code", "message", "details"}
    assert {"code", "message"} <= set(body["error"])
    return body["error"]


# --------------------------------------------------------------- routing errors


@pytest.mark.parametrize(
    "path", ["/nope", "/api/v1", "/api/v1/order", "/api/v2/orders", "/api/v1/orders/x/y/z"]
)
async def test_unknown_route_is_404_envelope(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, headers=auth("a"))
    assert_error(response, 404, "NOT_FOUND")
    exact_envelope(response)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", ORDERS),
        ("DELETE", ORDERS),
        ("PATCH", f"{ORDERS}/{uuid.uuid4()}"),
        ("GET", f"{ORDERS}/{uuid.uuid4()}/cancel"),
        ("DELETE", f"/api/v1/internal/orders/{uuid.uuid4()}"),
        ("POST", "/api/v1/health"),
    ],
)
async def test_wrong_method_is_405_envelope(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, path, headers={**auth("a"), **INTERNAL})
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    exact_envelope(response)
    assert response.headers["allow"]
    assert method not in response.headers["allow"]


# ------------------------------------------------------------------- bad bodies


@pytest.mark.parametrize(
    "content",
    [b'{"planId":', b"{not json}", b"\xff\xfe", b"[1, 2", b'{"planId": "a",}'],
    ids=["truncated", "bare-words", "bad-utf8", "open-list", "trailing-comma"],
)
async def test_malformed_json_is_400_with_fields(
    client: httpx.AsyncClient, engine: AsyncEngine, content: bytes
) -> None:
    response = await client.post(
        ORDERS, content=content, headers={**auth("a"), "Content-Type": "application/json"}
    )
    error = assert_error(response, 400, "VALIDATION_ERROR")
    exact_envelope(response)
    assert error["details"]["fields"]
    assert all({"field", "in", "message"} <= set(f) for f in error["details"]["fields"])
    assert await count(engine, Order) == 0


async def test_validation_error_names_every_bad_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        ORDERS,
        json={"planId": "", "duration": "WEEKLY", "couponCode": "c" * 65},
        headers=auth("a"),
    )
    error = assert_error(response, 400, "VALIDATION_ERROR")
    fields = {f["field"] for f in error["details"]["fields"]}
    assert {"planId", "imageId", "duration", "couponCode"} <= fields
    assert {f["in"] for f in error["details"]["fields"]} == {"body"}


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
async def test_wrong_content_type_is_refused_with_the_envelope(
    client: httpx.AsyncClient, engine: AsyncEngine, content_type: str
) -> None:
    response = await client.post(
        ORDERS,
        content=json.dumps(order_body()).encode(),
        headers={**auth("a"), "Content-Type": content_type},
    )
    assert response.status_code in (400, 415), response.text
    exact_envelope(response)
    assert await count(engine, Order) == 0


def big_body() -> bytes:
    body = order_body(couponCode="HEMAT20")
    body["padding"] = "x" * (LIMIT + 1)
    return json.dumps(body).encode()


async def test_body_over_64_kib_is_413(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    content = big_body()
    assert len(content) > LIMIT
    response = await client.post(
        ORDERS, content=content, headers={**auth("a"), "Content-Type": "application/json"}
    )
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    exact_envelope(response)
    assert response.headers["x-request-id"]
    assert await count(engine, Order) == 0


async def test_streamed_body_over_64_kib_is_413(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    content = big_body()

    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length: the limit must hold while the body is read.
        for start in range(0, len(content), 8192):
            yield content[start : start + 8192]

    response = await client.post(
        ORDERS, content=chunks(), headers={**auth("a"), "Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert await count(engine, Order) == 0


async def test_body_just_under_the_limit_is_read(client: httpx.AsyncClient) -> None:
    body = order_body()
    body["padding"] = ""
    overhead = len(json.dumps(body).encode())
    body["padding"] = "x" * (LIMIT - overhead)
    content = json.dumps(body).encode()
    assert len(content) == LIMIT
    response = await client.post(
        ORDERS, content=content, headers={**auth("a"), "Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text


async def test_over_limit_is_413_even_unauthenticated(client: httpx.AsyncClient) -> None:
    response = await client.post(
        ORDERS, content=big_body(), headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


# ------------------------------------------------------------- unexpected errors


def explode(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError(SECRET)


async def test_unexpected_exception_is_a_bare_500(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(service, "list_orders", explode)
    response = await client.get(ORDERS, headers={**auth("a"), "X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "INTERNAL_ERROR", "message": "Internal server error"}
    }
    assert SECRET not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text
    assert response.headers["x-request-id"] == "req-500"
    # The traceback goes to the log instead.
    assert any(record.exc_info and SECRET in str(record.exc_info[1]) for record in caplog.records)


async def test_an_exception_mid_transaction_rolls_everything_back(
    client: httpx.AsyncClient, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = await create_order(client, "rolly")
    # PAID has been written in the transaction when provisioning set-up fails.
    monkeypatch.setattr(service, "start_provisioning", explode)
    response = await client.post(
        f"/api/v1/internal/orders/{order['id']}/payment-status",
        json={"status": "PAID"},
        headers=INTERNAL,
    )
    assert_error(response, 500, "INTERNAL_ERROR")
    assert SECRET not in response.text
    monkeypatch.undo()
    detail = await client.get(f"/api/v1/internal/orders/{order['id']}", headers=INTERNAL)
    assert detail.json()["data"]["status"] == "PENDING_PAYMENT"
    assert detail.json()["data"]["paidAt"] is None
    assert await count(engine, StatusHistory) == 1


async def test_an_exception_releases_the_idempotency_key(
    client: httpx.AsyncClient, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = {**auth("a"), "Idempotency-Key": "crash-key"}
    monkeypatch.setattr(creation, "_create", explode)
    crashed = await client.post(ORDERS, json=order_body(), headers=headers)
    assert_error(crashed, 500, "INTERNAL_ERROR")
    monkeypatch.undo()
    assert await count(engine, IdempotencyKey) == 0
    retried = await client.post(ORDERS, json=order_body(), headers=headers)
    assert retried.status_code == 201


# ------------------------------------------------------------------ X-Request-ID

GENERATED = re.compile(r"^[0-9a-f]{32}$")


def requests_to_try(order_id: str) -> list[tuple[str, str, dict[str, str], Any, int]]:
    return [
        ("GET", "/api/v1/health", {}, None, 200),
        ("GET", ORDERS, auth("a"), None, 200),
        ("POST", ORDERS, auth("a"), order_body(), 201),
        ("GET", f"{ORDERS}/{order_id}", auth("a"), None, 200),
        ("GET", f"{ORDERS}/{order_id}", auth("b"), None, 403),
        ("GET", ORDERS, {}, None, 401),
        ("GET", "/nope", {}, None, 404),
        ("PUT", ORDERS, auth("a"), None, 405),
        ("POST", ORDERS, auth("a"), {"duration": "WEEKLY"}, 400),
        ("POST", f"/api/v1/internal/orders/{order_id}/retry-provisioning", INTERNAL, None, 409),
        ("GET", "/openapi.json", {}, None, 200),
    ]


async def test_request_id_is_echoed_on_success_and_error(client: httpx.AsyncClient) -> None:
    order = await create_order(client, "a")
    for method, path, headers, body, status in requests_to_try(order["id"]):
        request_id = f"trace-{uuid.uuid4()}"
        response = await client.request(
            method, path, headers={**headers, "X-Request-ID": request_id}, json=body
        )
        assert response.status_code == status, (method, path, response.text)
        assert response.headers["x-request-id"] == request_id, (method, path)


async def test_request_id_is_generated_when_not_sent(client: httpx.AsyncClient) -> None:
    order = await create_order(client, "a")
    seen = set()
    for method, path, headers, body, status in requests_to_try(order["id"]):
        response = await client.request(method, path, headers=headers, json=body)
        assert response.status_code == status, (method, path, response.text)
        assert GENERATED.match(response.headers["x-request-id"]), (method, path)
        seen.add(response.headers["x-request-id"])
    assert len(seen) == len(requests_to_try(order["id"]))  # a new one each time


async def test_request_id_on_413_and_500(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    too_big = await client.post(
        ORDERS,
        content=big_body(),
        headers={**auth("a"), "Content-Type": "application/json", "X-Request-ID": "big-1"},
    )
    assert too_big.status_code == 413
    assert too_big.headers["x-request-id"] == "big-1"
    monkeypatch.setattr(service, "get_order", explode)
    crashed = await client.get(f"{ORDERS}/{uuid.uuid4()}", headers=auth("a"))
    assert crashed.status_code == 500
    assert GENERATED.match(crashed.headers["x-request-id"])


@pytest.mark.parametrize(
    "unsafe", ["has space", "x" * 129, "<script>", "a\tb", "ünïcode"], ids=repr
)
async def test_unsafe_request_id_is_replaced(client: httpx.AsyncClient, unsafe: str) -> None:
    response = await client.get(
        "/api/v1/health", headers=[("X-Request-ID", unsafe.encode("utf-8"))]
    )
    assert response.status_code == 200
    assert GENERATED.match(response.headers["x-request-id"])


async def test_only_one_request_id_header(client: httpx.AsyncClient) -> None:
    response = await client.get("/nope", headers={"X-Request-ID": "one"})
    assert response.headers.get_list("x-request-id") == ["one"]


@pytest.mark.parametrize("plan_id", ["x/", "0%2F", "../plans/x/", ".."])
async def test_odd_plan_ids_are_validation_errors_not_catalog_outages(
    client: httpx.AsyncClient, plan_id: str
) -> None:
    # Found by the fuzzer: "0/" reached the catalog as .../plans/0%2F, which it
    # answered with a redirect, and the order failed as a 503. Ids are UUIDs
    # now (SPEC section 5), so such ids never reach the catalog at all.
    response = await client.post(ORDERS, json=order_body(planId=plan_id), headers=auth("a"))
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert [f["field"] for f in error["details"]["fields"]] == ["planId"]


async def test_nul_in_coupon_code_is_400(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    response = await client.post(ORDERS, json=order_body(couponCode="HEMAT\x00"), headers=auth("a"))
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert [f["field"] for f in error["details"]["fields"]] == ["couponCode"]
    assert await count(engine, Order) == 0


# ------------------------------------------------------------------ database down


@pytest.mark.parametrize(
    "database_url",
    [
        "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere",  # port 1 refuses
        "sqlite+aiosqlite:////nonexistent-directory/order-service.db",
    ],
    ids=["postgresql-refused", "sqlite-unopenable"],
)
async def test_database_down_is_503_in_the_envelope(database_url: str) -> None:
    from order_service.app import create_app
    from tests.conftest import make_settings

    application = create_app(make_settings(database_url), start_provisioner=False)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            listing = await client.get(ORDERS, headers=auth("a"))
            detail = await client.get(f"/api/v1/internal/orders/{uuid.uuid4()}", headers=INTERNAL)
    for response in (listing, detail):
        assert_error(response, 503, "DATABASE_UNAVAILABLE")
