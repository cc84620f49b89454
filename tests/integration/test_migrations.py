"""One Alembic history: single head, up/down/up on a fresh database, no drift."""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from order_service.db import Base, create_engine
from order_service.migrate import alembic_config, downgrade, upgrade
from tests.database import TestDatabase, admin_execute


@pytest.fixture
def fresh_url(database: TestDatabase) -> Iterator[str]:
    """An empty database of the same kind as the run's, dropped afterwards."""
    if not database.is_postgres:
        path = os.path.join(tempfile.mkdtemp(), "migrations.db")
        yield f"sqlite+aiosqlite:///{path}"
        return
    base, _, _ = database.url.rpartition("/")
    name = f"order_service_migrations_{uuid.uuid4().hex[:8]}"
    admin = base.replace("postgresql+asyncpg", "postgresql") + "/postgres"
    asyncio.run(admin_execute(admin, f'CREATE DATABASE "{name}"'))
    yield f"{base}/{name}"
    asyncio.run(admin_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_single_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite+aiosqlite://"))
    assert len(script.get_heads()) == 1


def test_upgrade_downgrade_upgrade_and_no_drift(fresh_url: str) -> None:
    upgrade(fresh_url)
    downgrade(fresh_url, "base")
    upgrade(fresh_url)
    assert asyncio.run(_drift(fresh_url)) == []


async def _drift(url: str) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
                )
            )
    finally:
        await engine.dispose()


def test_orders_active_before_v11_get_a_period_with_a_weeks_notice(fresh_url: str) -> None:
    """0005: v1 never set a period; an ACTIVE order gets one from its first ACTIVE."""
    from datetime import UTC, datetime, timedelta

    import sqlalchemy as sa

    from order_service.db import UTCDateTime

    upgrade(fresh_url, "0002")
    now = datetime.now(UTC)
    long_ago = now - timedelta(days=40)  # its month ran out while v1 did not look
    recent = now - timedelta(days=3)
    ids = {"long_ago": uuid.uuid4(), "recent": uuid.uuid4(), "unpaid": uuid.uuid4()}
    orders = sa.table(
        "orders",
        *(sa.column(name) for name in ("user_id", "plan_id", "plan_name", "image_id")),
        *(sa.column(name) for name in ("image_name", "duration", "base_price", "currency")),
        *(sa.column(name) for name in ("promo_discount", "coupon_discount", "final_price")),
        *(sa.column(name) for name in ("status", "do_size_slug", "do_image_slug")),
        sa.column("id", sa.Uuid()),
        *(sa.column(name, UTCDateTime()) for name in ("created_at", "updated_at", "paid_at")),
    )
    history = sa.table(
        "status_history",
        *(sa.column(name) for name in ("previous_status", "new_status", "actor")),
        sa.column("id", sa.Uuid()),
        sa.column("order_id", sa.Uuid()),
        sa.column("created_at", UTCDateTime()),
    )

    def order(key: str, status: str, duration: str, at: datetime) -> dict[str, Any]:
        return {
            "id": ids[key], "user_id": "u", "plan_id": "p", "plan_name": "P", "image_id": "i",
            "image_name": "I", "duration": duration, "base_price": 1, "currency": "IDR",
            "promo_discount": 0, "coupon_discount": 0, "final_price": 1, "status": status,
            "do_size_slug": "s", "do_image_slug": "i", "created_at": at, "updated_at": now,
            "paid_at": at,
        }  # fmt: skip

    async def seed() -> None:
        engine = create_engine(fresh_url)
        async with engine.begin() as connection:
            await connection.execute(
                orders.insert(),
                [
                    order("long_ago", "ACTIVE", "MONTHLY", long_ago),
                    order("recent", "ACTIVE", "ANNUAL", recent),
                    order("unpaid", "PENDING_PAYMENT", "MONTHLY", recent),
                ],
            )
            await connection.execute(
                history.insert(),
                [
                    {
                        "id": uuid.uuid4(),
                        "order_id": ids[key],
                        "previous_status": "PROVISIONING",
                        "new_status": "ACTIVE",
                        "actor": "system",
                        "created_at": at,
                    }
                    for key, at in (("long_ago", long_ago), ("recent", recent))
                ],
            )
        await engine.dispose()

    async def periods() -> dict[uuid.UUID, Any]:
        engine = create_engine(fresh_url)
        async with engine.connect() as connection:
            found = sa.table(
                "orders",
                sa.column("id", sa.Uuid()),
                *(
                    sa.column(name, UTCDateTime())
                    for name in ("activated_at", "expires_at", "next_reminder_at")
                ),
            )
            rows = (await connection.execute(sa.select(found))).all()
        await engine.dispose()
        return {row[0]: row[1:] for row in rows}

    asyncio.run(seed())
    upgrade(fresh_url)
    found = asyncio.run(periods())

    activated, expires, reminder = found[ids["long_ago"]]
    assert abs((activated - long_ago).total_seconds()) < 1
    # A month after activation is past: a week's notice from the upgrade instead.
    assert timedelta(days=6, hours=23) < expires - now < timedelta(days=7, minutes=5)
    # ... and its P7D reminder is due at once: the owner hears of it right away.
    assert abs((reminder - (expires - timedelta(days=7))).total_seconds()) < 1
    activated, expires, reminder = found[ids["recent"]]
    assert abs((activated - recent).total_seconds()) < 1
    assert expires.year == recent.year + 1 and expires.day == recent.day
    assert abs((reminder - (expires - timedelta(days=7))).total_seconds()) < 1
    assert found[ids["unpaid"]] == (None, None, None)


def test_orders_before_v12_get_their_droplets_region_and_no_access(fresh_url: str) -> None:
    """0008: the region of an order is its task's, else the default; access stays null."""
    from datetime import UTC, datetime

    import sqlalchemy as sa

    from order_service.db import UTCDateTime

    upgrade(fresh_url, "0007_ssh_keys")
    now = datetime.now(UTC)
    paid, unpaid = uuid.uuid4(), uuid.uuid4()
    text_columns = (
        "user_id", "plan_id", "plan_name", "image_id", "image_name", "duration", "currency",
        "status", "do_size_slug", "do_image_slug",
    )  # fmt: skip
    orders = sa.table(
        "orders",
        sa.column("id", sa.Uuid()),
        *(sa.column(name) for name in text_columns),
        *(sa.column(n) for n in ("base_price", "promo_discount", "coupon_discount", "final_price")),
        *(sa.column(name, UTCDateTime()) for name in ("created_at", "updated_at")),
    )
    tasks = sa.table(
        "provisioning_tasks",
        *(sa.column(name, sa.Uuid()) for name in ("id", "order_id")),
        *(sa.column(name) for name in ("status", "do_region", "do_size", "do_image")),
        *(sa.column(name) for name in ("attempts", "not_found_count")),
        *(sa.column(name, UTCDateTime()) for name in ("created_at", "updated_at")),
    )

    def order(order_id: uuid.UUID, status: str) -> dict[str, Any]:
        return {
            "id": order_id, **{name: "x" for name in text_columns}, "status": status,
            "base_price": 1, "promo_discount": 0, "coupon_discount": 0, "final_price": 1,
            "created_at": now, "updated_at": now,
        }  # fmt: skip

    async def seed() -> None:
        engine = create_engine(fresh_url)
        async with engine.begin() as connection:
            await connection.execute(
                orders.insert(), [order(paid, "ACTIVE"), order(unpaid, "PENDING_PAYMENT")]
            )
            await connection.execute(
                tasks.insert().values(
                    id=uuid.uuid4(), order_id=paid, status="SUCCESS", do_region="ams3",
                    do_size="s", do_image="i", attempts=1, not_found_count=0,
                    created_at=now, updated_at=now,
                )
            )  # fmt: skip
        await engine.dispose()

    async def found() -> dict[uuid.UUID, tuple[Any, ...]]:
        engine = create_engine(fresh_url)
        columns = ("region", "access", "hostname", "ssh_keys", "plan_changed_at")
        table = sa.table("orders", sa.column("id", sa.Uuid()), *(sa.column(c) for c in columns))
        async with engine.connect() as connection:
            rows = (await connection.execute(sa.select(table))).all()
        await engine.dispose()
        return {row[0]: tuple(row[1:]) for row in rows}

    asyncio.run(seed())
    upgrade(fresh_url)
    after = asyncio.run(found())
    assert after[paid] == ("ams3", None, None, None, None)
    default = os.environ.get("DIGITALOCEAN_DEFAULT_REGION", "sgp1")
    assert after[unpaid] == (default, None, None, None, None)
