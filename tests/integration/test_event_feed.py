"""The feed is gap-free (SPEC section 11): a reader paging with after = meta.next sees
every event exactly once, in sequence order, even when transactions commit out of order.

Also shown: numbering events at insert time (a plain sequence) with the naive
`sequence > after` *does* skip an event; the relay's numbering in commit order does not.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from order_service.events.models import Event
from order_service.events.outbox import write_event
from order_service.events.relay import Relay, stamp_pending
from tests.conftest import INTERNAL, auth
from tests.helpers import create_order, order_body
from tests.webhooks import eventually, read_feed, whole_feed

events_t = Event.__table__


async def test_feed_filters_and_pages(client: httpx.AsyncClient, app: Any) -> None:
    first = await create_order(client, "feed-user")
    second = await create_order(client, "feed-user")
    await client.post(f"/api/v1/internal/orders/{first['id']}/cancel", headers=INTERNAL)
    # Nothing is in the feed before the relay stamped it.
    assert (await read_feed(client))["data"] == []
    assert await stamp_pending(app.state.sessionmaker) == 3

    feed = await whole_feed(client)
    assert [e["sequence"] for e in feed] == [1, 2, 3]
    assert [e["type"] for e in feed] == ["order.created", "order.created", "order.canceled"]
    page = await read_feed(client, 0, limit=2)
    assert [e["sequence"] for e in page["data"]] == [1, 2] and page["meta"]["next"] == 2
    page = await read_feed(client, 2, limit=2)
    assert [e["sequence"] for e in page["data"]] == [3] and page["meta"]["next"] == 3
    by_order = await read_feed(client, 0, orderId=first["id"])
    assert [e["type"] for e in by_order["data"]] == ["order.created", "order.canceled"]
    by_type = await read_feed(client, 0, type="order.created")
    assert {e["orderId"] for e in by_type["data"]} == {first["id"], second["id"]}
    assert await stamp_pending(app.state.sessionmaker) == 0  # idempotent
    # A type that is not an event type's shape (a NUL byte: PostgreSQL refuses it
    # in text) is 400, found by the fuzz; an unknown well-formed type matches nothing.
    bad = await client.get("/api/v1/internal/events", params={"type": "\x00"}, headers=INTERNAL)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "VALIDATION_ERROR"
    assert (await read_feed(client, 0, type="order.unheard_of"))["data"] == []


async def test_the_counter_row_is_recreated_after_being_lost(
    client: httpx.AsyncClient, app: Any, engine: AsyncEngine
) -> None:
    await create_order(client, "counter-user")
    await stamp_pending(app.state.sessionmaker)
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM event_counter"))
    await create_order(client, "counter-user")
    await stamp_pending(app.state.sessionmaker)
    assert [e["sequence"] for e in await whole_feed(client)] == [1, 2]


@pytest.mark.postgres_only
async def test_naive_numbering_at_insert_skips_an_event(engine: AsyncEngine) -> None:
    """Two transactions numbered at insert; the smaller commits after a reader saw the larger."""
    table = f"naive_events_{uuid.uuid4().hex[:8]}"
    async with engine.begin() as connection:
        await connection.execute(text(f"CREATE TABLE {table} (sequence BIGSERIAL PRIMARY KEY)"))
    try:
        async with engine.connect() as first, engine.connect() as second:
            await first.begin()
            await first.execute(text(f"INSERT INTO {table} DEFAULT VALUES"))  # gets 1
            await second.begin()
            await second.execute(text(f"INSERT INTO {table} DEFAULT VALUES"))  # gets 2
            await second.commit()

            async def naive_page(after: int) -> list[int]:
                async with engine.connect() as reader:
                    rows = await reader.execute(
                        text(f"SELECT sequence FROM {table} WHERE sequence > :a ORDER BY 1"),  # noqa: S608
                        {"a": after},
                    )
                    return [row[0] for row in rows]

            seen = await naive_page(0)
            assert seen == [2]
            await first.commit()  # 1 becomes visible, behind the reader
            seen += await naive_page(seen[-1])
        everything = await naive_page(0)
        assert everything == [1, 2]
        assert seen == [2]  # the reader missed sequence 1 for good
    finally:
        async with engine.begin() as connection:
            await connection.execute(text(f"DROP TABLE {table}"))


@pytest.mark.postgres_only
async def test_the_relay_does_not_skip_in_the_same_interleaving(
    client: httpx.AsyncClient, app: Any
) -> None:
    sessionmaker = app.state.sessionmaker
    one = uuid.UUID((await create_order(client, "relay-user"))["id"])
    two = uuid.UUID((await create_order(client, "relay-user"))["id"])
    await stamp_pending(sessionmaker)
    start = (await read_feed(client))["meta"]["next"]

    async with sessionmaker() as first:
        await first.begin()
        slow = await write_event(first, "order.expiring", one)  # written first...
        async with sessionmaker() as second, second.begin():
            fast = await write_event(second, "order.expiring", two)  # ...committed first
        await stamp_pending(sessionmaker)
        page = await read_feed(client, start)
        assert [e["id"] for e in page["data"]] == [str(fast)]
        await first.commit()
    await stamp_pending(sessionmaker)
    later = await read_feed(client, page["meta"]["next"])
    assert [e["id"] for e in later["data"]] == [str(slow)]  # not skipped


@pytest.mark.postgres_only
async def test_concurrent_writers_and_a_paging_reader_see_every_event_once(
    client: httpx.AsyncClient, app: Any
) -> None:
    relay = Relay(app.state.sessionmaker)
    relay.start()
    stop = asyncio.Event()
    writes = 0

    async def writer(n: int) -> None:
        nonlocal writes
        rng = random.Random(n)
        user = auth(f"gap-writer-{n}")
        while not stop.is_set():
            created = await client.post("/api/v1/orders", json=order_body(), headers=user)
            assert created.status_code == 201, created.text
            order_id = created.json()["data"]["id"]
            if rng.random() < 0.5:
                path, body = "payment-status", {"status": "PAID"}
            else:
                path, body = "cancel", None
            changed = await client.post(
                f"/api/v1/internal/orders/{order_id}/{path}", json=body, headers=INTERNAL
            )
            assert changed.status_code == 200, changed.text
            writes += 1

    seen: list[dict[str, Any]] = []
    after = 0

    async def read_once() -> int:
        nonlocal after
        page = await read_feed(client, after, limit=50)
        seen.extend(page["data"])
        after = page["meta"]["next"]
        return len(page["data"])

    async def reader() -> None:
        while not stop.is_set():
            await read_once()
            await asyncio.sleep(0.005)

    try:
        tasks = [asyncio.create_task(writer(n)) for n in range(10)]
        tasks.append(asyncio.create_task(reader()))
        # A few seconds, and enough writes even on a loaded machine.
        await asyncio.sleep(3)
        await eventually(lambda: writes >= 40, within=30, what="40 writes")
        stop.set()
        read_while_writing = len(seen)
        await asyncio.gather(*tasks)

        async def all_stamped() -> bool:
            async with app.state.sessionmaker() as session:
                rows = await session.execute(
                    select(events_t.c.id).where(events_t.c.sequence.is_(None)).limit(1)
                )
                return rows.first() is None

        await eventually(all_stamped, what="every event stamped")
        while await read_once():
            pass
    finally:
        await relay.stop()

    full = await whole_feed(client)
    sequences = [e["sequence"] for e in seen]
    assert writes >= 40, writes
    assert len(full) >= 2 * writes
    assert all(a < b for a, b in itertools.pairwise(sequences))
    assert [e["id"] for e in seen] == [e["id"] for e in full]  # nothing missed, nothing twice
    assert sequences == list(range(1, len(full) + 1))
    print(f"{writes} writes, {len(full)} events, {read_while_writing} read while writing")
