"""The lifecycle scan reads the rows that are due, not all orders (SPEC section 9), counted.

PostgreSQL's own row counters (pg_stat_user_tables) over a scanner with an
engine of its own: thousands of orders that are not due, scanned more than
five times (when PostgreSQL may switch a prepared statement to a generic
plan, which read every order before `db.plan_with_values`), then a batch of
due suspensions (whose superseding query read every PENDING action of every
order before migration 0006's index). bench/lifecycle_scan.py measures the
same at 10,000 and 100,000 orders.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from order_service.db import create_engine, create_sessionmaker
from order_service.lifecycle.scanner import LifecycleScanner, ScanResult
from order_service.orders.repository import orders_t
from tests.lifecycle_helpers import active_order, tasks_t

pytestmark = pytest.mark.postgres_only

NOT_DUE = 3_000
DUE = 100
SCANS = 10  # more than the five custom plans PostgreSQL makes before trying a generic one


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _clone(
    dsn: str, order_id: str, copies: int, *, expires_in: timedelta, invoiced: bool = False
) -> None:
    """`copies` orders like `order_id` (with its droplet), created long ago, expiring as told
    (`invoiced`: their period's renewal was opened already, rule 6)."""
    o = [column.name for column in orders_t.c]
    t = [column.name for column in tasks_t.c]
    chosen = {
        "id": "ids.new_id",
        "created_at": "o.created_at - interval '400 days'",
        "expires_at": "now() + $2::interval",
        "next_reminder_at": "NULL",
        # now() is the transaction's: the same moment as expires_at.
        "renewal_due_at": "NULL" if invoiced else "now() + $2::interval",
    }
    # Column names come from our own tables, never from input.
    copy_orders = (
        f"INSERT INTO orders ({', '.join(o)}) SELECT "  # noqa: S608
        + ", ".join(chosen.get(name, f"o.{name}") for name in o)
        + " FROM orders o, ids WHERE o.id = $1"
    )
    task_values = {"id": "gen_random_uuid()", "order_id": "ids.new_id"}
    copy_tasks = (
        f"INSERT INTO provisioning_tasks ({', '.join(t)}) SELECT "  # noqa: S608
        + ", ".join(task_values.get(name, f"p.{name}") for name in t)
        + " FROM provisioning_tasks p, ids WHERE p.order_id = $1"
    )
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction():
            await connection.execute(
                "CREATE TEMP TABLE ids ON COMMIT DROP AS"
                " SELECT gen_random_uuid() AS new_id FROM generate_series(1, $1)",
                copies,
            )
            await connection.execute(copy_orders, uuid.UUID(order_id), expires_in)
            await connection.execute(copy_tasks, uuid.UUID(order_id))
            # A history of finished actions, as a service that has run a while
            # has: PostgreSQL's statistics then say PENDING is rare.
            await connection.execute(
                "INSERT INTO server_actions (id, order_id, type, status, requested_by,"
                " attempts, created_at, updated_at, completed_at)"
                " SELECT gen_random_uuid(), new_id, 'REBOOT', 'COMPLETED', 'user', 1,"
                " now(), now(), now() FROM ids"
            )
        await connection.execute("ANALYZE orders")
        await connection.execute("ANALYZE provisioning_tasks")
        await connection.execute("ANALYZE server_actions")
    finally:
        await connection.close()


async def _rows_read(dsn: str) -> dict[str, int]:
    """Heap rows read per table so far (sequential scans + index fetches)."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("SELECT pg_stat_clear_snapshot()")
        rows = await connection.fetch(
            "SELECT relname, coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) AS read"
            " FROM pg_stat_user_tables"
        )
    finally:
        await connection.close()
    return {row["relname"]: int(row["read"]) for row in rows}


async def _scans_counted(
    url: str, settings: Any, times: int, catalog: Any = None
) -> tuple[list[ScanResult], Any]:
    """Scan `times` times on an engine of its own; the rows its backends read, per table."""
    dsn = _dsn(url)
    before = await _rows_read(dsn)
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as connection:
            pid = (await connection.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one()
        scanner = LifecycleScanner(create_sessionmaker(engine), settings, catalog=catalog)
        results = [await scanner.scan() for _ in range(times)]
    finally:
        await engine.dispose()
    # A backend reports its counters when it exits: wait for it to be gone.
    watcher = await asyncpg.connect(dsn)
    try:
        for _ in range(200):
            if not await watcher.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid
            ):
                break
            await asyncio.sleep(0.05)
    finally:
        await watcher.close()
    after = await _rows_read(dsn)
    for _ in range(20):  # the last flush may land a moment after the backend left the list
        await asyncio.sleep(0.1)
        again = await _rows_read(dsn)
        if again == after:
            break
        after = again
    return results, {table: after[table] - before.get(table, 0) for table in after}


async def test_scan_reads_only_due_rows_whatever_the_plan_cache_does(
    client: httpx.AsyncClient, app: Any, database: Any
) -> None:
    template = await active_order(client, app)
    await _clone(_dsn(database.url), template["id"], NOT_DUE, expires_in=timedelta(days=20))
    settings = app.state.settings

    results, read = await _scans_counted(database.url, settings, SCANS)
    assert all(result.total() == 0 for result in results), results
    # Without custom plans: about NOT_DUE rows for each scan after the fifth.
    assert read["orders"] < 10 * SCANS, read

    await _clone(_dsn(database.url), template["id"], DUE, expires_in=-timedelta(days=40))
    (result,), read = await _scans_counted(database.url, settings, 1)
    assert result.suspended == DUE, result
    # Each suspension supersedes the order's PENDING actions and enqueues two:
    # a handful of action rows each, not every PENDING action of every order.
    assert read["server_actions"] < 5 * DUE, read
    assert read["orders"] < 20 * DUE, read


async def test_renewals_that_open_themselves_read_only_the_due_orders(
    client: httpx.AsyncClient, app: Any, database: Any
) -> None:
    # Rule 6 (v1.2): orders far from their end, and orders within RENEWAL_INVOICE_LEAD
    # whose period was invoiced already, are not read; only the due ones are.
    template = await active_order(client, app)
    dsn = _dsn(database.url)
    await _clone(dsn, template["id"], NOT_DUE, expires_in=timedelta(days=20))
    await _clone(dsn, template["id"], NOT_DUE, expires_in=timedelta(days=3), invoiced=True)
    settings, catalog = app.state.settings, app.state.catalog

    results, read = await _scans_counted(database.url, settings, SCANS, catalog)
    assert all(result.total() == 0 for result in results), results
    assert read["orders"] < 10 * SCANS, read

    await _clone(dsn, template["id"], DUE, expires_in=timedelta(days=2))
    (result,), read = await _scans_counted(database.url, settings, 1, catalog)
    assert (result.invoiced, result.failed) == (DUE, 0), result
    assert read["orders"] < 20 * DUE, read
