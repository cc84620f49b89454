"""The GET endpoints read through their own pool on PostgreSQL.

DATABASE_POOL_SIZE is split in two there: half for the GET endpoints (an
asyncpg pool, no session, no transaction), half for every other request. So a
burst of writes that holds every write connection does not make a read wait,
and a read gives the same JSON as it did through a session.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from order_service.config import Settings
from order_service.jsonresponse import dumps
from order_service.orders import service
from tests.conftest import INTERNAL, auth, make_settings
from tests.helpers import api_only, create_order, pay

ORDERS = "/api/v1/orders"


@pytest.mark.postgres_only
async def test_reads_answer_while_every_write_connection_is_taken(
    settings: Settings, catalog_app: Any, clean_db: None
) -> None:
    small = make_settings(settings.database_url, database_pool_size=2)  # 1 read + 1 write
    assert small.request_pool_split == (1, 1)
    async with api_only(small, catalog_app) as (application, client):
        order_id = (await create_order(client, "reader"))["id"]
        assert (await pay(client, order_id)).status_code == 200
        # A write transaction holds the only write connection (and the order's row).
        async with application.state.sessionmaker() as session, session.begin():
            await session.execute(
                text("SELECT 1 FROM orders WHERE id = :id FOR UPDATE"), {"id": order_id}
            )
            # Through the write pool these would wait 30 s for the connection.
            reads = await asyncio.wait_for(
                asyncio.gather(
                    client.get(f"{ORDERS}/{order_id}", headers=auth("reader")),
                    client.get(ORDERS, headers=auth("reader")),
                    client.get(f"/api/v1/internal/orders/{order_id}", headers=INTERNAL),
                    client.get("/api/v1/internal/orders", headers=INTERNAL),
                ),
                timeout=10,
            )
        assert [r.status_code for r in reads] == [200] * 4
        detail, listing, internal, internal_list = (r.json() for r in reads)
        assert detail["data"]["status"] == "PROVISIONING"
        assert listing["meta"]["total"] == 1
        assert listing["data"][0]["id"] == order_id
        assert internal_list["data"][0]["items"] == detail["data"]["items"]
    # Each column (JSONB metadata and droplet tags among them) reads the same
    # through the read pool as through a session.
    async with application.state.sessionmaker() as session:
        through_session = await service.get_order(
            session, uuid.UUID(order_id), owner=None, history=True
        )
    assert internal == json.loads(dumps(through_session))
    assert internal["data"]["statusHistory"][-1]["newStatus"] == "PROVISIONING"


@pytest.mark.postgres_only
async def test_a_read_waits_for_a_read_connection_not_a_write_one(
    settings: Settings, catalog_app: Any, clean_db: None
) -> None:
    small = make_settings(settings.database_url, database_pool_size=2)
    async with api_only(small, catalog_app) as (application, client):
        order_id = (await create_order(client, "reader"))["id"]
        pool = application.state.read_pool
        held = await pool.acquire()  # the only read connection
        try:
            waiting = asyncio.ensure_future(
                client.get(f"{ORDERS}/{order_id}", headers=auth("reader"))
            )
            await asyncio.sleep(0.3)
            assert not waiting.done()
        finally:
            await pool.release(held)
        assert (await asyncio.wait_for(waiting, timeout=10)).status_code == 200


async def test_sqlite_reads_through_sessions(
    settings: Settings, catalog_app: Any, clean_db: None
) -> None:
    if not settings.is_sqlite:
        pytest.skip("the SQLite half of the split")
    async with api_only(settings, catalog_app) as (application, client):
        assert application.state.read_pool is None
        order_id = (await create_order(client, "reader"))["id"]
        answer = await client.get(f"{ORDERS}/{order_id}", headers=auth("reader"))
        assert answer.status_code == 200
        assert answer.json()["data"]["id"] == order_id
