"""Expired Idempotency-Keys are purged; live ones stay."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from order_service.db import utcnow
from order_service.orders.models import IdempotencyKey
from tests.conftest import auth
from tests.helpers import order_body


async def test_purge_removes_only_expired_keys(client: Any, app: Any, engine: AsyncEngine) -> None:
    for key in ("old", "new"):
        headers = {**auth("keeper"), "Idempotency-Key": key}
        response = await client.post("/api/v1/orders", json=order_body(), headers=headers)
        assert response.status_code == 201
    async with engine.begin() as connection:
        await connection.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == "old")
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )

    assert await app.state.idempotency.purge_expired() == 1

    async with engine.connect() as connection:
        keys = (await connection.execute(select(IdempotencyKey.key))).scalars().all()
        assert keys == ["new"]
        assert (
            await connection.execute(select(func.count()).select_from(IdempotencyKey))
        ).scalar_one() == 1
