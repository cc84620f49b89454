"""`python -m bench.lifecycle_scan`: what one lifecycle scan costs with 10,000 vs 100,000 orders.

SPEC section 9 promises that a scan costs in proportion to the rows that
are due, never to all orders. For each size N this writes N ACTIVE orders
whose period is running (expiry 1-365 days ahead, next reminder ahead) into
a fresh PostgreSQL database, then measures:

- an idle scan (nothing due: the six rules' index reads only), median of 20;
- a scan with 100 orders due for suspension (each: transition, history,
  event, SHUTDOWN and POWER_OFF actions, in batches of 100);
- v1.2, rule 6: a scan with 100 orders due for the renewal the service opens
  itself (RENEWAL_INVOICE_LEAD, P7D, before expiresAt: each priced live by the
  mock catalog in-process, then a renewal and its event); the orders within
  the lead that were invoiced already (renewal_due_at null) are not due;
- the rows each of those touched, from PostgreSQL's own counters
  (pg_stat_user_tables: heap rows read by sequential and index scans, rows
  written), so "does not grow with the total" is counted, not only timed;
- the plan of each rule's query (EXPLAIN), which must be an index scan.

The database `order_service_bench_lifecycle` on 127.0.0.1:5432 (user
$PGUSER, default postgres) is dropped and created again for each size.
Results: bench/results/lifecycle_scan.json and a table on stdout. Heavy
(100,000 rows written): not for a machine others are testing on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.dialects import postgresql

from mocks.catalog_service import create_app as create_catalog
from order_service import models  # noqa: F401  (every table)
from order_service.catalog.client import CatalogClient
from order_service.config import load_settings
from order_service.db import create_engine, create_sessionmaker, skip_locked, utcnow
from order_service.lifecycle.scanner import LifecycleScanner
from order_service.migrate import upgrade
from order_service.orders.repository import orders_t

NAME = "order_service_bench_lifecycle"
USER = os.environ.get("PGUSER", "postgres")
ADMIN_DSN = f"postgresql://{USER}@127.0.0.1:5432/postgres"
DSN = f"postgresql://{USER}@127.0.0.1:5432/{NAME}"
URL = f"postgresql+asyncpg://{USER}@127.0.0.1:5432/{NAME}"
RESULTS = Path(__file__).resolve().parent / "results" / "lifecycle_scan.json"
DUE = 100
IDLE_SCANS = 20
COLUMNS = [column.name for column in orders_t.c]


async def execute(statement: str, dsn: str = ADMIN_DSN) -> None:
    """One statement on its own connection (default: the server's `postgres` database)."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def fresh_database(name: str, url: str) -> None:
    """Drop and create database `name`, then migrate it to the head (`url` reaches it)."""
    await drop_database(name)
    await execute(f'CREATE DATABASE "{name}"')
    await asyncio.to_thread(upgrade, url)


async def drop_database(name: str) -> None:
    await execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


LEAD = timedelta(days=7)  # RENEWAL_INVOICE_LEAD's default


def order_row(n: int, *, due: bool, renewal_due: bool = False) -> tuple[Any, ...]:
    """An ACTIVE order: running (`due` False), long expired (due for suspension), or
    `renewal_due` (3 days left, its next period not invoiced yet)."""
    now = utcnow()
    ahead = timedelta(days=3) if renewal_due else timedelta(days=1 + n % 365, seconds=n % 86_400)
    expires = now - timedelta(days=40) if due else now + ahead
    values = {
        "id": uuid.uuid4(),
        "user_id": f"bench-user-{n % 5000}",
        "plan_id": "a1000000-0000-4000-8000-000000000001",
        "plan_name": "Basic 1GB",
        "image_id": "b2000000-0000-4000-8000-000000000001",
        "image_name": "Ubuntu 22.04 LTS",
        "duration": "MONTHLY",
        "base_price": 100_000,
        "promo_discount": 10_000,
        "coupon_code": None,
        "coupon_discount": 0,
        "final_price": 90_000,
        "currency": "IDR",
        "status": "ACTIVE",
        "do_size_slug": "s-1vcpu-1gb",
        "do_image_slug": "ubuntu-22-04-x64",
        "created_at": now - timedelta(days=400),
        "updated_at": now,
        "paid_at": now - timedelta(days=400),
        "activated_at": now - timedelta(days=400),
        "expires_at": expires,
        "suspended_at": None,
        "suspension_reason": None,
        "terminated_at": None,
        "termination_reason": None,
        "cancel_at_period_end": False,
        # The next reminder is ahead (7 days before the end, or none when that is past).
        "next_reminder_at": None if due or ahead <= timedelta(days=7) else expires - timedelta(7),
        # v1.2's customer server, as an order from before it (all nullable).
        "hostname": None,
        "region": None,
        "access": None,
        "ssh_keys": None,
        "plan_changed_at": None,
        "disk_gb": None,
        # Rule 6: an order within the lead had its renewal opened already (a steady
        # state), unless it is one of the due ones.
        "renewal_due_at": expires if renewal_due or due or ahead > LEAD else None,
    }
    return tuple(values[name] for name in COLUMNS)


async def _copy(rows: list[tuple[Any, ...]]) -> None:
    connection = await asyncpg.connect(DSN)
    try:
        await connection.copy_records_to_table("orders", records=rows, columns=COLUMNS)
        await connection.execute("ANALYZE orders")
    finally:
        await connection.close()


async def _table_counters() -> dict[str, int]:
    """PostgreSQL's cumulative row counters over every table of the bench database.

    A backend reports its counts when it exits (or every second or so while
    busy), so callers dispose their engine first; this waits until no other
    backend is connected to the database, then reads a fresh snapshot.
    """
    connection = await asyncpg.connect(DSN)
    try:
        for _ in range(100):
            others = await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()",
                NAME,
            )
            if others == 0:
                break
            await asyncio.sleep(0.05)
        await connection.execute("SELECT pg_stat_clear_snapshot()")
        row = await connection.fetchrow(
            "SELECT coalesce(sum(seq_tup_read), 0) + coalesce(sum(idx_tup_fetch), 0) AS read,"
            " coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) AS written,"
            " coalesce(sum(seq_scan) FILTER (WHERE relname = 'orders'), 0) AS orders_seq_scans"
            " FROM pg_stat_user_tables"
        )
    finally:
        await connection.close()
    return {key: int(row[key]) for key in ("read", "written", "orders_seq_scans")}


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {key: after[key] - before[key] for key in after}


async def _scan_with_fresh_engine(settings: Any, times: int) -> tuple[list[float], list[Any]]:
    """Run `times` scans on an engine of their own, disposed after (so its counters land).

    Rule 6 prices renewals live: the mock catalog answers in-process."""
    engine = create_engine(URL, pool_size=2)
    catalog = CatalogClient("http://catalog", transport=httpx.ASGITransport(app=create_catalog()))
    try:
        scanner = LifecycleScanner(create_sessionmaker(engine), settings, catalog=catalog)
        durations, results = [], []
        for _ in range(times):
            t0 = time.perf_counter()
            results.append(await scanner.scan())
            durations.append(time.perf_counter() - t0)
    finally:
        await catalog.aclose()
        await engine.dispose()
    return durations, results


async def _plans(scanner_settings: Any) -> dict[str, str]:
    """The first line of each rule's plan: which index it reads."""
    now = utcnow()
    o = orders_t.c
    queries = {
        "unpaid": orders_t.select().where(
            o.status == "PENDING_PAYMENT", o.created_at <= now - timedelta(days=7)
        ),
        "reminders": orders_t.select().where(o.status == "ACTIVE", o.next_reminder_at <= now),
        "period_end": orders_t.select().where(
            o.status == "ACTIVE", o.expires_at <= now, o.cancel_at_period_end.is_(True)
        ),
        "suspend": orders_t.select().where(
            o.status == "ACTIVE", o.expires_at <= now - timedelta(days=1)
        ),
        "terminate": orders_t.select().where(
            o.status == "SUSPENDED",
            o.suspension_reason == "EXPIRED",
            o.suspended_at <= now - timedelta(days=7),
        ),
        "renewals": orders_t.select().where(
            o.status == "ACTIVE",
            o.renewal_due_at <= now + LEAD,
            o.cancel_at_period_end.is_(False),
        ),
    }
    connection = await asyncpg.connect(DSN)
    plans = {}
    try:
        for name, query in queries.items():
            order = o.renewal_due_at if name == "renewals" else o.expires_at
            statement = skip_locked(query.order_by(order).limit(100))
            sql = str(
                statement.compile(
                    dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
                )
            )
            rows = await connection.fetch("EXPLAIN " + sql)
            plans[name] = " / ".join(
                row[0].strip() for row in rows if "Scan" in row[0] or "Index" in row[0]
            )
    finally:
        await connection.close()
    return plans


async def measure(size: int) -> dict[str, Any]:
    await fresh_database(NAME, URL)
    started = time.perf_counter()
    await _copy([order_row(n, due=False) for n in range(size)])
    loaded_s = time.perf_counter() - started
    settings = load_settings(
        database_url=URL,
        internal_api_key="bench",
        jwt_algorithm="HS256",
        jwt_secret="bench-secret-bench-secret-bench-secret",
        _env_file=None,
    )
    # Rows loaded by COPY are not "touched by the scan": keep autovacuum from
    # reading them mid-measurement either.
    await execute("ALTER TABLE orders SET (autovacuum_enabled = false)", DSN)
    await _scan_with_fresh_engine(settings, 1)  # warm: catalog caches, first plans
    before_idle = await _table_counters()
    idle, results = await _scan_with_fresh_engine(settings, IDLE_SCANS)
    idle_rows = _delta(await _table_counters(), before_idle)
    assert all(result.total() == 0 for result in results), results
    await _copy([order_row(n, due=True) for n in range(DUE)])
    before_due = await _table_counters()
    (due_s,), (result,) = await _scan_with_fresh_engine(settings, 1)
    due_rows = _delta(await _table_counters(), before_due)
    assert result.suspended == DUE, result
    # Rule 6: 100 orders 3 days from their end, their next period not invoiced yet.
    await _copy([order_row(n, due=False, renewal_due=True) for n in range(DUE)])
    before_renewals = await _table_counters()
    (renewal_s,), (renewed,) = await _scan_with_fresh_engine(settings, 1)
    renewal_rows = _delta(await _table_counters(), before_renewals)
    assert renewed.invoiced == DUE and renewed.failed == 0, renewed
    return {
        "orders": size,
        "load_s": round(loaded_s, 1),
        "idle_scan_ms": round(statistics.median(idle) * 1000, 2),
        "idle_scan_p90_ms": round(sorted(idle)[int(len(idle) * 0.9)] * 1000, 2),
        "due": DUE,
        "idle_rows_touched": round(idle_rows["read"] / IDLE_SCANS, 1),
        "idle_rows_written": round(idle_rows["written"] / IDLE_SCANS, 1),
        "due_scan_s": round(due_s, 2),
        "rows_touched": due_rows["read"],
        "rows_written": due_rows["written"],
        "orders_seq_scans": idle_rows["orders_seq_scans"] + due_rows["orders_seq_scans"],
        "per_due_order_ms": round(due_s * 1000 / DUE, 1),
        "renewal_scan_s": round(renewal_s, 2),
        "renewal_rows_touched": renewal_rows["read"],
        "renewal_rows_written": renewal_rows["written"],
        "renewal_orders_seq_scans": renewal_rows["orders_seq_scans"],
        "plans": await _plans(settings),
    }


async def main(sizes: list[int]) -> None:
    results = []
    try:
        for size in sizes:
            print(f"-- {size:,} ACTIVE orders ...", flush=True)
            results.append(await measure(size))
    finally:
        await drop_database(NAME)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(
        "\n| ACTIVE orders | idle scan (median / p90) | rows read per idle scan "
        "| scan with 100 due | rows read / written by it | per due order "
        "| scan with 100 renewals due (rule 6) | rows read / written by it |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(
            f"| {r['orders']:,} | {r['idle_scan_ms']} / {r['idle_scan_p90_ms']} ms "
            f"| {r['idle_rows_touched']} | {r['due_scan_s']} s "
            f"| {r['rows_touched']:,} / {r['rows_written']:,} | {r['per_due_order_ms']} ms "
            f"| {r['renewal_scan_s']} s "
            f"| {r['renewal_rows_touched']:,} / {r['renewal_rows_written']:,} |"
        )
    for r in results:
        print(f"\nplans with {r['orders']:,} orders:")
        for rule, plan in r["plans"].items():
            print(f"  {rule:<11} {plan}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.lifecycle_scan", description=__doc__)
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated order counts")
    arguments = parser.parse_args()
    asyncio.run(main([int(part) for part in arguments.sizes.split(",")]))
