"""A fresh benchmark database: drop, create, migrate, bulk-seed with COPY.

Rows match the schema the service's migrations create (orders, order_items,
status_history, provisioning_tasks) and the shapes the service itself writes:
two items per order (PLAN, IMAGE), one history row per status change, a task
for every order past payment.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from bench.infra import DB_NAME, VENV_BIN, clean_env, db_url, log, workdir

PLAN_ID = "a1000000-0000-4000-8000-000000000001"  # mocks.catalog_service.data.PLAN_BASIC_ID
IMAGE_ID = "b2000000-0000-4000-8000-000000000001"  # IMAGE_UBUNTU_ID
PLAN_NAME = "Basic 1GB"
IMAGE_NAME = "Ubuntu 22.04 LTS"
SIZE_SLUG = "s-1vcpu-1gb"
IMAGE_SLUG = "ubuntu-22-04-x64"

ORDER_COLUMNS = (
    "id",
    "user_id",
    "plan_id",
    "plan_name",
    "image_id",
    "image_name",
    "duration",
    "base_price",
    "promo_discount",
    "coupon_code",
    "coupon_discount",
    "final_price",
    "currency",
    "status",
    "do_size_slug",
    "do_image_slug",
    "created_at",
    "updated_at",
    "paid_at",
)
ITEM_COLUMNS = (
    "id",
    "order_id",
    "item_type",
    "reference_id",
    "description",
    "unit_price",
    "quantity",
    "total_price",
    "created_at",
)
HISTORY_COLUMNS = (
    "id",
    "order_id",
    "previous_status",
    "new_status",
    "actor",
    "reason",
    "metadata",
    "created_at",
)
TASK_COLUMNS = (
    "id",
    "order_id",
    "status",
    "do_region",
    "do_size",
    "do_image",
    "droplet_id",
    "droplet_name",
    "droplet_status",
    "ipv4_public",
    "ipv4_private",
    "droplet_tags",
    "droplet_created_at",
    "error_code",
    "error_message",
    "attempts",
    "started_at",
    "completed_at",
    "created_at",
    "updated_at",
    "requested_at",
    "create_intent_at",
    "create_action_id",
    "not_found_count",
    "lease_owner",
    "lease_expires_at",
    "next_check_at",
)


@dataclass
class Rows:
    orders: list[tuple[Any, ...]] = field(default_factory=list)
    items: list[tuple[Any, ...]] = field(default_factory=list)
    history: list[tuple[Any, ...]] = field(default_factory=list)
    tasks: list[tuple[Any, ...]] = field(default_factory=list)

    def add_order(self, user_id: str, status: str, created: datetime) -> uuid.UUID:
        """One order the way POST /orders writes it (10% promo, HEMAT20), moved to `status`."""
        order_id = uuid.uuid4()
        paid = status in ("ACTIVE", "PROVISIONING", "FAILED")
        updated = created + timedelta(seconds=40) if status != "PENDING_PAYMENT" else created
        self.orders.append(
            (
                order_id,
                user_id,
                PLAN_ID,
                PLAN_NAME,
                IMAGE_ID,
                IMAGE_NAME,
                "MONTHLY",
                100000,
                10000,
                "HEMAT20",
                18000,
                72000,
                "IDR",
                status,
                SIZE_SLUG,
                IMAGE_SLUG,
                created,
                updated,
                created + timedelta(seconds=30) if paid else None,
            )
        )
        for item_type, ref, description, price in (
            ("PLAN", PLAN_ID, f"{PLAN_NAME} (MONTHLY)", 100000),
            ("IMAGE", IMAGE_ID, IMAGE_NAME, 0),
        ):
            self.items.append(
                (uuid.uuid4(), order_id, item_type, ref, description, price, 1, price, created)
            )
        steps: list[tuple[str | None, str, str, str]] = [
            (None, "PENDING_PAYMENT", f"user:{user_id}", "Order created")
        ]
        if status == "CANCELED":
            steps.append(("PENDING_PAYMENT", "CANCELED", f"user:{user_id}", "Canceled"))
        if paid:
            steps.append(("PENDING_PAYMENT", "PAID", "admin", "Payment received"))
            steps.append(("PAID", "PROVISIONING", "system", "Provisioning queued"))
        if status == "ACTIVE":
            steps.append(("PROVISIONING", "ACTIVE", "system", "Droplet is active"))
        for n, (previous, new, actor, reason) in enumerate(steps):
            self.history.append(
                (
                    uuid.uuid4(),
                    order_id,
                    previous,
                    new,
                    actor,
                    reason,
                    None,
                    created + timedelta(seconds=10 * n, microseconds=n),
                )
            )
        if status == "ACTIVE":
            self.add_task(order_id, created, finished=True)
        return order_id

    def add_task(
        self,
        order_id: uuid.UUID,
        created: datetime,
        *,
        finished: bool,
        droplet_id: int | None = None,
        tags: list[str] | None = None,
    ) -> None:
        """A SUCCESS task (finished) or an IN_PROGRESS one following `droplet_id`."""
        name = f"vps-{str(order_id)[:8]}"
        number = len(self.tasks) + 1
        tags = tags or ["order-service", f"order-{order_id}"]
        requested = created + timedelta(seconds=31)
        self.tasks.append(
            (
                uuid.uuid4(),
                order_id,
                "SUCCESS" if finished else "IN_PROGRESS",
                "sgp1",
                SIZE_SLUG,
                IMAGE_SLUG,
                droplet_id if droplet_id is not None else 300_000_000 + number,
                name,
                "active" if finished else "new",
                f"203.0.{number // 250 % 250}.{number % 250 + 1}" if finished else None,
                f"10.10.{number // 250 % 250}.{number % 250 + 1}" if finished else None,
                json.dumps(tags),
                requested,
                None,
                None,
                3 if finished else 0,
                requested,
                created + timedelta(seconds=40) if finished else None,
                created + timedelta(seconds=30),
                created + timedelta(seconds=40),
                requested,
                requested,
                None,
                0,
                None,
                None,
                requested,
            )
        )


async def copy_rows(conn: asyncpg.Connection, rows: Rows) -> None:
    for table, columns, records in (
        ("orders", ORDER_COLUMNS, rows.orders),
        ("order_items", ITEM_COLUMNS, rows.items),
        ("status_history", HISTORY_COLUMNS, rows.history),
        ("provisioning_tasks", TASK_COLUMNS, rows.tasks),
    ):
        if records:
            await conn.copy_records_to_table(table, records=records, columns=list(columns))


def recreate_database() -> None:
    """Drop and create the benchmark database (only ours, by name), then migrate it."""

    async def run() -> None:
        conn = await asyncpg.connect(db_url("postgresql", "postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{DB_NAME}"')
        finally:
            await conn.close()

    asyncio.run(run())
    subprocess.run(
        [str(VENV_BIN / "order-service"), "migrate"],
        env=clean_env({"DATABASE_URL": db_url()}),
        cwd=workdir(),
        check=True,
        capture_output=True,
    )


@dataclass
class Seeded:
    user_order_ids: list[str]
    payable_ids: list[str]
    storm_ids: dict[int, list[str]]
    memory_ids: list[str]


READ_USER = "bench-user"
PAYER_USER = "bench-payer"
CREATOR_USER = "bench-creator"
STORM_USER = "bench-storm"
MEMORY_USER = "bench-memory"


async def _seed(user_orders: int, payable: int, storms: list[int], memory: int) -> Seeded:
    now = datetime.now(UTC).replace(microsecond=0)
    rows = Rows()
    user_ids = []
    start = now - timedelta(minutes=user_orders)
    for i in range(user_orders):
        # 60% ACTIVE (with a finished task), 30% waiting for payment, 10% canceled.
        status = "ACTIVE" if i % 10 < 6 else ("PENDING_PAYMENT" if i % 10 < 9 else "CANCELED")
        user_ids.append(str(rows.add_order(READ_USER, status, start + timedelta(minutes=i))))
    payable_ids = [
        str(rows.add_order(PAYER_USER, "PENDING_PAYMENT", now - timedelta(seconds=i)))
        for i in range(payable)
    ]
    storm_ids = {
        size: [
            str(rows.add_order(f"{STORM_USER}-{size}", "PENDING_PAYMENT", now)) for _ in range(size)
        ]
        for size in storms
    }
    memory_ids = [str(rows.add_order(MEMORY_USER, "PENDING_PAYMENT", now)) for _ in range(memory)]
    conn = await asyncpg.connect(db_url("postgresql"))
    try:
        await copy_rows(conn, rows)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return Seeded(user_ids, payable_ids, storm_ids, memory_ids)


def seed(user_orders: int, payable: int, storms: list[int], memory: int) -> Seeded:
    log(
        f"seeding {user_orders} orders for {READ_USER}, {payable} payable, "
        f"storms {storms}, {memory} for memory"
    )
    return asyncio.run(_seed(user_orders, payable, storms, memory))


async def execute(sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(db_url("postgresql"))
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def retire_unfinished_tasks() -> int:
    """Bench-only clean-up between phases: end every unfinished task so no process resumes it.

    Only ever run on the benchmark database.
    """
    rows = asyncio.run(
        execute(
            "UPDATE provisioning_tasks SET status = 'FAILED', error_code = 'BENCH_RETIRED', "
            "lease_owner = NULL, lease_expires_at = NULL "
            "WHERE status IN ('PENDING', 'IN_PROGRESS') RETURNING id"
        )
    )
    return len(rows)


def forget_droplets() -> None:
    """Bench-only: every droplet the database still counts as live is marked gone.

    Each run gets a fresh fake DO with empty accounts, so the droplets of earlier runs'
    tasks (retired ones included) no longer exist there; left "live" they would still
    hold slots in their accounts and change where the next run's droplets go. Only ever
    run on the benchmark database.
    """
    asyncio.run(
        execute(
            "UPDATE provisioning_tasks SET droplet_status = 'gone' "
            "WHERE droplet_id IS NOT NULL "
            "AND coalesce(droplet_status, 'new') NOT IN ('destroyed', 'gone')"
        )
    )


def warn_about_connections(needed: int) -> None:
    """The API phase holds up to ~80 connections (pools of 20 per service process plus the
    ceiling's): say so when the server has fewer free, since others may share it."""

    async def run() -> tuple[int, int]:
        conn = await asyncpg.connect(db_url("postgresql"))
        try:
            limit = int(await conn.fetchval("SHOW max_connections"))
            used = int(await conn.fetchval("SELECT count(*) FROM pg_stat_activity"))
            return limit, used
        finally:
            await conn.close()

    limit, used = asyncio.run(run())
    if limit - used < needed:
        log(
            f"WARNING: PostgreSQL has {limit - used} free connections (max_connections={limit}); "
            f"the benchmark may hold up to {needed}: other users of this server may get "
            "'too many clients' meanwhile"
        )
