"""CORS_ORIGINS (SPEC section 2): preflights before auth, CORS headers on every envelope."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.middleware.cors import CORSMiddleware

from tests.conftest import API_KEY, auth, make_settings
from tests.database import TestDatabase
from tests.helpers import assert_error, order_body

FRONTEND = "http://localhost:4200"
OTHER = "http://evil.test"
ORDERS = "/api/v1/orders"


async def _client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield client


@pytest.fixture
async def service(
    database: TestDatabase, catalog_app: Any, clean_db: None
) -> AsyncIterator[httpx.AsyncClient]:
    from order_service.app import create_app

    settings = make_settings(
        database.url, cors_origins=f"{FRONTEND}, http://127.0.0.1:4200", max_body_bytes=1024
    )
    app = create_app(
        settings, catalog_transport=httpx.ASGITransport(app=catalog_app), start_provisioner=False
    )

    @app.get("/boom", include_in_schema=False)
    async def boom() -> None:
        raise RuntimeError("an unexpected bug")

    async for client in _client(app):
        yield client


def preflight(method: str, headers: str, origin: str = FRONTEND) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


def split(value: str | None) -> set[str]:
    return {part.strip().lower() for part in (value or "").split(",") if part.strip()}


async def test_a_preflight_from_an_allowed_origin_is_answered_before_auth(
    service: httpx.AsyncClient,
) -> None:
    response = await service.options(
        ORDERS,
        headers=preflight("POST", "authorization,content-type,idempotency-key,x-request-id"),
    )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == FRONTEND
    assert split(response.headers["access-control-allow-methods"]) >= {
        "get",
        "post",
        "patch",
        "delete",
    }
    assert split(response.headers["access-control-allow-headers"]) >= {
        "authorization",
        "content-type",
        "idempotency-key",
        "x-request-id",
    }
    assert "x-api-key" not in split(response.headers["access-control-allow-headers"])


@pytest.mark.parametrize("path", [f"{ORDERS}/0b9e2a43-1c7f-4a55-9d1e-7f7c2b2e9a10", ORDERS])
@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "DELETE"])
async def test_every_allowed_method_passes_the_preflight(
    service: httpx.AsyncClient, path: str, method: str
) -> None:
    response = await service.options(path, headers=preflight(method, "authorization"))
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == FRONTEND


async def test_a_preflight_from_another_origin_gets_no_allow_origin(
    service: httpx.AsyncClient,
) -> None:
    response = await service.options(ORDERS, headers=preflight("POST", "authorization", OTHER))
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers
    # Like every error: the envelope, and a request id.
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == {
        "code": "VALIDATION_ERROR",
        "message": "Cross-origin request not allowed",
        "details": {"disallowed": ["origin"]},
    }
    assert response.headers["x-request-id"]


async def test_a_preflight_asking_for_x_api_key_is_refused_in_the_envelope(
    service: httpx.AsyncClient,
) -> None:
    response = await service.options(ORDERS, headers=preflight("POST", "x-api-key"))
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"disallowed": ["headers"]}
    assert response.headers["access-control-allow-origin"] == FRONTEND  # the origin is fine


async def test_a_preflight_carries_the_request_id_like_every_response(
    service: httpx.AsyncClient,
) -> None:
    given = {**preflight("GET", "authorization"), "X-Request-ID": "trace-123"}
    echoed = await service.options(ORDERS, headers=given)
    assert echoed.status_code == 200
    assert echoed.headers["x-request-id"] == "trace-123"
    made = await service.options(ORDERS, headers=preflight("GET", "authorization"))
    assert len(made.headers["x-request-id"]) == 32  # a new one when none was sent


async def test_a_request_from_another_origin_gets_no_allow_origin(
    service: httpx.AsyncClient,
) -> None:
    response = await service.get(ORDERS, headers={**auth("alice"), "Origin": OTHER})
    assert response.status_code == 200  # the server answers; the browser hides it
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("path", [ORDERS, "/api/v1/internal/orders"])
async def test_x_api_key_is_never_allowed_cross_origin(
    service: httpx.AsyncClient, path: str
) -> None:
    response = await service.options(path, headers=preflight("GET", "x-api-key"))
    assert response.status_code == 400
    assert "x-api-key" not in split(response.headers.get("access-control-allow-headers"))


async def test_a_created_order_carries_the_cors_headers(service: httpx.AsyncClient) -> None:
    response = await service.post(
        ORDERS, json=order_body(), headers={**auth("alice"), "Origin": FRONTEND}
    )
    assert response.status_code == 201, response.text
    assert response.headers["access-control-allow-origin"] == FRONTEND
    assert "x-request-id" in split(response.headers["access-control-expose-headers"])
    assert response.headers["x-request-id"]


async def test_error_envelopes_carry_the_cors_headers(service: httpx.AsyncClient) -> None:
    cases = [
        (await service.get(ORDERS, headers={"Origin": FRONTEND}), 401, "UNAUTHORIZED"),
        (
            await service.get(f"{ORDERS}/nope", headers={**auth("a"), "Origin": FRONTEND}),
            404,
            "ORDER_NOT_FOUND",
        ),
        (await service.get("/nowhere", headers={"Origin": FRONTEND}), 404, "NOT_FOUND"),
        (
            await service.post(
                ORDERS, json=order_body(planId="x"), headers={**auth("a"), "Origin": FRONTEND}
            ),
            400,
            "VALIDATION_ERROR",
        ),
        (
            await service.get(
                "/api/v1/internal/orders", headers={"X-API-Key": "wrong", "Origin": FRONTEND}
            ),
            401,
            "UNAUTHORIZED",
        ),
        # Made by the request middleware itself, outside the routes.
        (
            await service.post(
                ORDERS, content=b"x" * 4096, headers={**auth("a"), "Origin": FRONTEND}
            ),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        (await service.get("/boom", headers={"Origin": FRONTEND}), 500, "INTERNAL_ERROR"),
    ]
    for response, status, code in cases:
        assert_error(response, status, code)
        assert response.headers.get("access-control-allow-origin") == FRONTEND, (status, code)
        assert "x-request-id" in split(response.headers.get("access-control-expose-headers"))


async def test_without_cors_origins_there_is_no_cors_at_all(
    database: TestDatabase, catalog_app: Any, clean_db: None
) -> None:
    from order_service.app import create_app

    app = create_app(make_settings(database.url), start_provisioner=False)
    assert all(m.cls is not CORSMiddleware for m in app.user_middleware)
    async for client in _client(app):
        response = await client.options(ORDERS, headers=preflight("POST", "authorization"))
        assert_error(response, 405, "METHOD_NOT_ALLOWED")
        assert "access-control-allow-origin" not in response.headers
        response = await client.get(ORDERS, headers={"Origin": FRONTEND, "X-API-Key": API_KEY})
        assert "access-control-allow-origin" not in response.headers
