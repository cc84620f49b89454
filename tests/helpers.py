"""Small helpers shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx

from mocks.catalog_service.data import IMAGE_UBUNTU_ID, PLAN_BASIC_ID
from tests.conftest import INTERNAL, auth

if TYPE_CHECKING:
    from fastapi import FastAPI

    from order_service.config import Settings


@asynccontextmanager
async def api_only(
    settings: Settings, catalog_app: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with these settings, started (no background duty), and a client for it."""
    from order_service.app import create_app

    application = create_app(
        settings,
        catalog_transport=httpx.ASGITransport(app=catalog_app),
        start_provisioner=False,
    )
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://order-service") as c:
            yield application, c


def order_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "planId": PLAN_BASIC_ID,
        "imageId": IMAGE_UBUNTU_ID,
        "duration": "MONTHLY",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


async def create_order(
    client: httpx.AsyncClient, user: str = "user-1", **overrides: Any
) -> dict[str, Any]:
    response = await client.post("/api/v1/orders", json=order_body(**overrides), headers=auth(user))
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def pay(client: httpx.AsyncClient, order_id: str, status: str = "PAID") -> httpx.Response:
    return await client.post(
        f"/api/v1/internal/orders/{order_id}/payment-status",
        json={"status": status},
        headers=INTERNAL,
    )


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]
