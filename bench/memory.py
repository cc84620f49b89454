"""Phase 4: resident memory of one service process, idle and with 1,000 droplets in flight.

Two scenarios, each in a fresh process against a fake DigitalOcean whose
droplets take 600 s to boot (so nothing finishes while we measure):

A. 1,000 droplets in flight, followed. The service's own budget (225
   creates/min, capped at 250 by config) would need 4.5 minutes to create
   1,000 droplets, so the harness creates them in the fake directly (its
   per-minute limit raised for that) and writes the 1,000 tasks IN_PROGRESS
   with their droplet ids, exactly as a process that crashed mid-storm leaves
   them. The running process claims them (two scans of 500), starts 1,000
   workers and follows every droplet through the watcher's cohort listings.

B. 1,000 orders paid at once through the API: 1,000 tasks claimed and 1,000
   workers started; 225 droplets are created in the first minute and followed,
   the other 775 workers wait for the rate budget. This is what the API sees.

RSS is VmRSS from /proc/PID/status, sampled every 0.5 s; "idle" is after a
warm-up of every endpoint, before any task exists.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import load, seed, stack
from bench.api import CREATE_BODY
from bench.infra import DO_TOKEN, Proc, db_url, log, rss_mib
from bench.storm import _pay_all

BOOT_S = 600.0
POLL_MS = 2000


def _sample(pid: int, seconds: float) -> dict[str, float]:
    values = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        values.append(rss_mib(pid))
        time.sleep(0.5)
    return {
        "median_mib": round(statistics.median(values), 1),
        "max_mib": round(max(values), 1),
        "samples": len(values),
    }


def _metric(service: Proc, name: str) -> float | None:
    with urllib.request.urlopen(service.url + "/metrics", timeout=5) as answer:  # noqa: S310
        for line in answer.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    return None


def _fake_stats(fake: Proc) -> dict[str, Any]:
    with urllib.request.urlopen(fake.url + "/_fake/stats", timeout=5) as answer:  # noqa: S310
        return json.loads(answer.read())


def _warm(service: Proc, user_ids_file: Path) -> None:
    reader = {"Authorization": f"Bearer {stack.token(seed.READ_USER)}"}
    creator = {
        "Authorization": f"Bearer {stack.token(seed.CREATOR_USER)}",
        "Content-Type": "application/json",
    }
    for spec in (
        load.Load(
            "detail",
            script="detail.lua",
            script_args=[str(user_ids_file)],
            headers=reader,
            ids_file=str(user_ids_file),
            id_path="/api/v1/orders/{id}",
        ),
        load.Load("list", path="/api/v1/orders?page=1&limit=10", headers=reader),
        load.Load(
            "create",
            script="create.lua",
            script_args=[CREATE_BODY],
            headers=creator,
            method="POST",
            body=CREATE_BODY,
            path="/api/v1/orders",
        ),
    ):
        load.run(service.url, spec, connections=16, duration_s=1)


async def _create_droplets(fake: Proc, order_ids: list[str]) -> list[tuple[str, int, list[str]]]:
    cohort = f"vps-batch-{datetime.now(UTC):%Y%m%d%H}"
    headers = {"Authorization": f"Bearer {DO_TOKEN}"}
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=fake.url, headers=headers, limits=limits) as client:

        async def create(order_id: str) -> tuple[str, int, list[str]]:
            tags = ["order-service", f"order-{order_id}", cohort]
            answer = await client.post(
                "/v2/droplets",
                json={
                    "name": f"vps-{order_id[:8]}",
                    "region": "sgp1",
                    "size": seed.SIZE_SLUG,
                    "image": seed.IMAGE_SLUG,
                    "tags": tags,
                    "monitoring": True,
                },
                timeout=30,
            )
            answer.raise_for_status()
            return order_id, int(answer.json()["droplet"]["id"]), tags

        return list(await asyncio.gather(*(create(i) for i in order_ids)))


async def _write_in_flight(droplets: list[tuple[str, int, list[str]]]) -> None:
    """The rows a process that died mid-storm leaves: orders PROVISIONING, tasks IN_PROGRESS."""
    now = datetime.now(UTC)
    rows = seed.Rows()
    for order_id, droplet_id, tags in droplets:
        rows.add_task(uuid.UUID(order_id), now, finished=False, droplet_id=droplet_id, tags=tags)
    conn = await asyncpg.connect(db_url("postgresql"))
    try:
        async with conn.transaction():
            await conn.execute(
                "UPDATE orders SET status = 'PROVISIONING', paid_at = $2, updated_at = $2 "
                "WHERE id = ANY($1::uuid[])",
                [uuid.UUID(d[0]) for d in droplets],
                now,
            )
            await seed.copy_rows(conn, rows)
    finally:
        await conn.close()


def _wait_in_flight(service: Proc, want: int, within: float) -> float:
    deadline = time.monotonic() + within
    value = 0.0
    while time.monotonic() < deadline:
        value = _metric(service, "order_service_provisioning_tasks_in_flight") or 0.0
        if value >= want:
            return value
        time.sleep(0.5)
    return value


def run_memory(
    workdir: Path,
    catalog: Proc,
    memory_ids: list[str],
    user_ids_file: Path,
    *,
    src: str | None = None,
    scenario_b_ids: list[str] | None = None,
) -> dict[str, Any]:
    n = len(memory_ids)
    results: dict[str, Any] = {"tasks": n, "boot_s": BOOT_S, "poll_interval_ms": POLL_MS}
    seed.retire_unfinished_tasks()
    fake = stack.start_fake_do(workdir, boot_seconds=BOOT_S, per_minute=100_000, name="fake-do-mem")
    env = stack.service_env(
        catalog,
        fake,
        provisioning_poll_interval_ms=str(POLL_MS),
        provisioning_max_attempts="100000",
    )
    try:
        # --- A: 1,000 droplets in flight, followed
        service = stack.start_service(workdir, env, src=src, name="service-mem-a")
        try:
            _warm(service, user_ids_file)
            idle = _sample(service.pid, 3)
            droplets = asyncio.run(_create_droplets(fake, memory_ids))
            before = _fake_stats(fake)["by_route"]
            asyncio.run(_write_in_flight(droplets))
            in_flight = _wait_in_flight(service, n, 60)
            # Let the watcher make a few rounds over all 1,000 droplets.
            time.sleep(2 * POLL_MS / 1000)
            busy = _sample(service.pid, 5)
            after = _fake_stats(fake)["by_route"]
        finally:
            service.stop()
        results["followed"] = {
            "idle": idle,
            "in_flight": busy,
            "workers_in_flight": in_flight,
            "droplets_followed": len(droplets),
            "do_requests_while_following": {k: after[k] - before.get(k, 0) for k in after},
            "growth_mib": round(busy["max_mib"] - idle["median_mib"], 1),
        }
        log(f"memory A: idle {idle['median_mib']} MiB, 1,000 in flight {busy['max_mib']} MiB")
        # --- B: 1,000 orders paid at once through the API
        if scenario_b_ids:
            seed.retire_unfinished_tasks()
            service = stack.start_service(workdir, env, src=src, name="service-mem-b")
            try:
                _warm(service, user_ids_file)
                idle_b = _sample(service.pid, 3)
                paid = asyncio.run(_pay_all(service.url, scenario_b_ids))
                in_flight_b = _wait_in_flight(service, len(scenario_b_ids), 60)
                time.sleep(2 * POLL_MS / 1000)
                busy_b = _sample(service.pid, 5)
                created = _fake_stats(fake)["by_route"]
            finally:
                service.stop()
            results["paid_at_once"] = {
                "idle": idle_b,
                "in_flight": busy_b,
                "payments": paid,
                "workers_in_flight": in_flight_b,
                "droplets_created": created.get("create", 0) - len(droplets),
                "growth_mib": round(busy_b["max_mib"] - idle_b["median_mib"], 1),
            }
            log(
                f"memory B: idle {idle_b['median_mib']} MiB, "
                f"after paying 1,000 {busy_b['max_mib']} MiB"
            )
    finally:
        fake.stop()
        seed.retire_unfinished_tasks()
    return results
