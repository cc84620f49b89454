"""The worker's HTTP face (worker.health_app): health.py's routes, answering as the API's do."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from order_service.db import create_engine
from order_service.worker import health_app


@asynccontextmanager
async def worker_client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=health_app(engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
        yield client


async def test_liveness_and_readiness_answer_as_the_apis(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    async with worker_client(engine) as worker:
        for path in ("/api/v1/health", "/api/v1/health/ready"):
            ours, apis = await worker.get(path), await client.get(path)
            assert ours.status_code == apis.status_code == 200
            assert ours.json() == apis.json()
        metrics = await worker.get("/metrics")
        assert metrics.status_code == 200
        # The process's one registry, the duties' metrics among them.
        assert "order_service_provisioning_tasks_in_flight" in metrics.text
        assert "order_service_webhook_deliveries_in_flight" in metrics.text
        missing = await worker.get("/api/v1/orders")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "NOT_FOUND"


async def test_readiness_is_503_when_the_database_is_unreachable() -> None:
    unreachable = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none", pool_size=1)
    try:
        async with worker_client(unreachable) as worker:
            ready = await worker.get("/api/v1/health/ready")
            assert ready.status_code == 503
            assert ready.json() == {
                "error": {"code": "NOT_READY", "message": "Database is unreachable"}
            }
            assert (await worker.get("/api/v1/health")).status_code == 200
    finally:
        await unreachable.dispose()
