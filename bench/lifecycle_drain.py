"""`python -m bench.lifecycle_drain`: how fast a backlog of due suspensions drains.

SPEC section 9 suspends an expired order in two halves: the database half
(SUSPENDED, history, event, a SHUTDOWN and a delayed POWER_OFF action, in
batches of 100 per transaction) and the DigitalOcean half (the actions, each a
few DO requests drawn from the shared budget). Issue 9's goal: a backlog of
10,000 due suspensions drains at a rate bounded by the DO budget, not by the
database. This measures both halves on a real `order-service serve`:

1. a fresh database `order_service_bench_drain` gets N ACTIVE orders whose
   period ended 40 days ago, each with a droplet seeded in the fake
   DigitalOcean (its control route, not counted as a DO request);
2. one `serve` process (default budget: 225 DO requests/min of DO's 250)
   starts with a 1 s lifecycle scan and is watched every 2 s: orders
   SUSPENDED (database), droplets `off` and DO requests (the fake's stats);
3. after `--window` seconds it stops. The database half is timed to the end;
   the DO half is a rate over the steady part of the window (after its first
   minute), projected to the whole backlog.

The whole backlog's DO half takes over an hour at DO's limit, which is the
point: the figure to read is droplets off per minute against requests per
minute, with requests per minute at the budget.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import httpx

from bench import lifecycle_scan
from bench.infra import INTERNAL_API_KEY, RESULTS_DIR, log, stopping, workdir
from bench.stack import service_env, start_catalog, start_fake_do, start_service
from order_service.db import utcnow
from order_service.provisioning.models import ProvisioningTask

NAME = "order_service_bench_drain"
DSN = f"postgresql://{lifecycle_scan.USER}@127.0.0.1:5432/{NAME}"
URL = f"postgresql+asyncpg://{lifecycle_scan.USER}@127.0.0.1:5432/{NAME}"
RESULTS = RESULTS_DIR / "lifecycle_drain.json"
BUDGET_PER_MINUTE = 225  # the service's default DIGITALOCEAN_RATE_PER_MINUTE
TASK_COLUMNS = [column.name for column in ProvisioningTask.__table__.c]


async def _seed_droplets(fake_url: str, order_ids: list[uuid.UUID]) -> list[int]:
    """One `active` droplet per order, tagged as the provisioner would have tagged it."""
    ids: list[int] = [0] * len(order_ids)
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=fake_url, limits=limits, timeout=30) as client:
        queue = list(enumerate(order_ids))

        async def worker() -> None:
            while queue:
                index, order_id = queue.pop()
                response = await client.post(
                    "/_fake/droplets",
                    json={"name": f"vps-{str(order_id)[:8]}", "tags": [f"order-{order_id}"]},
                )
                response.raise_for_status()
                ids[index] = response.json()["droplet"]["id"]

        await asyncio.gather(*(worker() for _ in range(16)))
    return ids


def _task_row(order_id: uuid.UUID, droplet_id: int) -> tuple[Any, ...]:
    then = utcnow() - timedelta(days=400)
    values = {column: None for column in TASK_COLUMNS}
    values.update(
        id=uuid.uuid4(),
        order_id=order_id,
        status="SUCCESS",
        do_region="sgp1",
        do_size="s-1vcpu-1gb",
        do_image="ubuntu-22-04-x64",
        droplet_id=droplet_id,
        droplet_name=f"vps-{str(order_id)[:8]}",
        droplet_status="active",
        ipv4_public="203.0.113.7",
        attempts=1,
        not_found_count=0,
        started_at=then,
        completed_at=then,
        created_at=then,
        updated_at=then,
    )
    return tuple(values[column] for column in TASK_COLUMNS)


async def _load(fake_url: str, due: int) -> None:
    await lifecycle_scan.fresh_database(NAME, URL)
    orders = [lifecycle_scan.order_row(n, due=True) for n in range(due)]
    id_index = lifecycle_scan.COLUMNS.index("id")
    order_ids = [row[id_index] for row in orders]
    droplet_ids = await _seed_droplets(fake_url, order_ids)
    connection = await asyncpg.connect(DSN)
    try:
        await connection.copy_records_to_table(
            "orders", records=orders, columns=lifecycle_scan.COLUMNS
        )
        await connection.copy_records_to_table(
            "provisioning_tasks",
            records=[_task_row(o, d) for o, d in zip(order_ids, droplet_ids, strict=True)],
            columns=TASK_COLUMNS,
        )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


async def _sample(connection: asyncpg.Connection, fake: httpx.AsyncClient) -> dict[str, Any]:
    suspended = await connection.fetchval("SELECT count(*) FROM orders WHERE status = 'SUSPENDED'")
    actions = {
        f"{row['type']} {row['status']}{' ' + row['error_code'] if row['error_code'] else ''}": row[
            "count"
        ]
        for row in await connection.fetch(
            "SELECT type, status, error_code, count(*) FROM server_actions"
            " GROUP BY type, status, error_code"
        )
    }
    stats = (await fake.get("/_fake/stats")).json()
    return {
        "suspended": suspended,
        "actions": actions,
        "do_requests": stats["requests"],
        "rate_limited": stats["rate_limited"],
        "by_route": {route: n for route, n in stats["by_route"].items() if n},
        "droplets_off": stats["droplets_by_status"].get("off", 0),
    }


async def _watch(fake_url: str, due: int, window_s: float) -> list[dict[str, Any]]:
    samples = []
    started = time.monotonic()
    connection = await asyncpg.connect(DSN)
    try:
        async with httpx.AsyncClient(base_url=fake_url, timeout=30) as fake:
            while (elapsed := time.monotonic() - started) < window_s:
                sample = {"t": round(elapsed, 1), **await _sample(connection, fake)}
                samples.append(sample)
                if len(samples) % 15 == 1:
                    log(
                        f"drain t={sample['t']}s: {sample['suspended']:,}/{due:,} SUSPENDED, "
                        f"{sample['droplets_off']:,} droplets off, "
                        f"{sample['do_requests']:,} DO requests"
                    )
                await asyncio.sleep(2)
    finally:
        await connection.close()
    return samples


def summarize(samples: list[dict[str, Any]], due: int, steady_from_s: float) -> dict[str, Any]:
    """The database half's time, and the DO half's steady rate against the budget."""
    db_done = next((s["t"] for s in samples if s["suspended"] >= due), None)
    first_off = next((s for s in samples if s["droplets_off"] > 0), samples[0])
    steady = [s for s in samples if s["t"] >= max(steady_from_s, first_off["t"])]
    start, end = steady[0], steady[-1]
    minutes = (end["t"] - start["t"]) / 60
    off_per_min = (end["droplets_off"] - start["droplets_off"]) / minutes
    requests_per_min = (end["do_requests"] - start["do_requests"]) / minutes
    return {
        "due": due,
        "db_all_suspended_s": db_done,
        "db_suspensions_per_s": round(due / db_done, 1) if db_done else None,
        "steady_window_s": round(end["t"] - start["t"], 1),
        "droplets_off_per_min": round(off_per_min, 1),
        "do_requests_per_min": round(requests_per_min, 1),
        "budget_per_min": BUDGET_PER_MINUTE,
        "budget_used": round(requests_per_min / BUDGET_PER_MINUTE, 2),
        "do_requests_per_suspension": (
            round(requests_per_min / off_per_min, 2) if off_per_min else None
        ),
        "projected_drain_min": round(due / off_per_min, 1) if off_per_min else None,
        "rate_limited": end["rate_limited"],
        "droplets_off_at_end": end["droplets_off"],
        "db_over_do_rate": (
            round((due / db_done) * 60 / off_per_min, 1) if db_done and off_per_min else None
        ),
    }


def run_drain(due: int = 10_000, window_s: float = 180.0) -> dict[str, Any]:
    """Everything above; the service and fakes are stopped and the database dropped after."""
    directory = workdir("order-service-drain-")
    catalog = start_catalog(directory)
    fake = start_fake_do(directory, boot_seconds=0.5)
    service = None
    try:
        log(f"drain: seeding {due:,} due orders with droplets")
        asyncio.run(_load(fake.url, due))
        env = service_env(
            catalog,
            fake,
            database_url=URL,
            internal_api_key=INTERNAL_API_KEY,
            lifecycle_scan_interval="PT1S",
        )
        service = start_service(directory, env, name="drain-service")
        samples = asyncio.run(_watch(fake.url, due, window_s))
    finally:
        with stopping(service, fake, catalog):
            pass
        asyncio.run(lifecycle_scan.drop_database(NAME))
    return {"summary": summarize(samples, due, steady_from_s=60.0), "samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lifecycle_drain", description=__doc__)
    parser.add_argument("--due", type=int, default=10_000, help="orders due for suspension")
    parser.add_argument("--window", type=float, default=180.0, help="seconds to watch")
    arguments = parser.parse_args()
    result = run_drain(arguments.due, arguments.window)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
