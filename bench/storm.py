"""Phase 3: a payment storm against the fake DigitalOcean enforcing DO's limits.

N orders (created beforehand) are paid at once through the API; the harness
then watches the database until every one is ACTIVE. Meanwhile a light
open-loop probe (its own process) reads order details, and the same probe ran
idle just before, so the storm's effect on the API is a ratio of two
measurements of the same process minutes apart.
"""

from __future__ import annotations

import asyncio
import json
import math
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import seed, stack
from bench.infra import INTERNAL_API_KEY, REPO, CpuMeter, Proc, clean_env, db_url, log, rss_mib

DO_PER_MINUTE = 250  # what the fake enforces, like DO
BUDGET_PER_MINUTE = 225  # the service's default share (DIGITALOCEAN_RATE_PER_MINUTE)
BUDGET_SKEW_S = 2.0  # RateBudget counts a send for 60 s + this skew
PROBE_RATE = 50.0
IDLE_S = 6.0


def lower_bounds(n: int, boot_s: float) -> dict[str, float]:
    """Fastest possible time to all ACTIVE, counting only the n creates and the boot.

    A rolling window of W requests per 60 s lets the k-th request (0-based) go
    at floor(k / W) windows; the last droplet then boots for `boot_s`.
    """
    return {
        "do_limit_s": 60 * math.floor((n - 1) / DO_PER_MINUTE) + boot_s,
        "our_budget_s": (60 + BUDGET_SKEW_S) * math.floor((n - 1) / BUDGET_PER_MINUTE) + boot_s,
    }


def _percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))], 2)


def window_stats(samples: list[list[float]], start: float, end: float) -> dict[str, Any]:
    chosen = [s for s in samples if start <= s[0] < end]
    latencies = [s[1] for s in chosen]
    return {
        "requests": len(chosen),
        "errors": sum(1 for s in chosen if s[2] != 200),
        "p50_ms": _percentile(latencies, 50),
        "p95_ms": _percentile(latencies, 95),
        "p99_ms": _percentile(latencies, 99),
        "max_ms": round(max(latencies), 2) if latencies else 0.0,
    }


async def _pay_all(url: str, ids: list[str]) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    headers = {"X-API-Key": INTERNAL_API_KEY}
    async with httpx.AsyncClient(base_url=url, limits=limits, headers=headers) as client:

        async def pay(order_id: str) -> tuple[int, float]:
            began = time.perf_counter()
            try:
                answer = await client.post(
                    f"/api/v1/internal/orders/{order_id}/payment-status",
                    json={"status": "PAID", "notes": "storm"},
                    timeout=60,
                )
                status = answer.status_code
            except httpx.HTTPError:
                status = 0
            return status, time.perf_counter() - began

        results = await asyncio.gather(*(pay(i) for i in ids))
    return {
        "ok": sum(1 for s, _ in results if s == 200),
        "errors": sum(1 for s, _ in results if s != 200),
        "p50_ms": _percentile([t * 1000 for _, t in results], 50),
        "p99_ms": _percentile([t * 1000 for _, t in results], 99),
    }


async def _count(ids: list[str]) -> tuple[int, int]:
    conn = await asyncpg.connect(db_url("postgresql"))
    try:
        row = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE status = 'ACTIVE') AS active, "
            "count(*) FILTER (WHERE status = 'FAILED') AS failed "
            "FROM orders WHERE id = ANY($1::uuid[])",
            ids,
        )
        return int(row["active"]), int(row["failed"])
    finally:
        await conn.close()


def _fake_stats(fake: Proc) -> dict[str, Any]:
    with urllib.request.urlopen(fake.url + "/_fake/stats", timeout=5) as answer:  # noqa: S310
        return json.loads(answer.read())


def start_probe(service: Proc, ids_file: Path, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.probe",
            "--url",
            service.url,
            "--token",
            stack.token(seed.READ_USER),
            "--ids",
            str(ids_file),
            "--rate",
            str(PROBE_RATE),
            "--max-seconds",
            "900",
            "--out",
            str(out),
        ],
        env=clean_env({"PYTHONPATH": str(REPO)}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def run_storm(
    workdir: Path,
    catalog: Proc,
    ids: list[str],
    user_ids_file: Path,
    *,
    boot_s: float = 2.0,
    poll_ms: int = 1000,
    src: str | None = None,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    n = len(ids)
    bounds = lower_bounds(n, boot_s)
    timeout_s = timeout_s or bounds["our_budget_s"] * 2.5 + 60
    seed.retire_unfinished_tasks()
    fake = stack.start_fake_do(workdir, boot_seconds=boot_s, per_minute=DO_PER_MINUTE)
    service = stack.start_service(
        workdir,
        stack.service_env(
            catalog,
            fake,
            provisioning_poll_interval_ms=str(poll_ms),
            # The default deadline (5 s x 60 = 300 s) at the faster poll interval: the
            # deadline counts from the create intent, which is recorded before the
            # wait for the rate budget (see docs/benchmarks.md, section 3).
            provisioning_max_attempts=str(int(300_000 / poll_ms)),
        ),
        src=src,
        name=f"service-storm-{n}",
    )
    probe_out = workdir / f"probe-{n}.json"
    try:
        probe = start_probe(service, user_ids_file, probe_out)
        time.sleep(IDLE_S + 1)  # one second for the probe to start
        meter = CpuMeter({"server": service.pids, "fake_do": fake.pids})
        meter.start()
        started = time.time()
        log(f"storm: paying {n} orders at once")
        paid = asyncio.run(_pay_all(service.url, ids))
        paid_at = time.time()
        active = failed = 0
        peak_rss = rss_mib(service.pid)
        while time.time() - started < timeout_s:
            active, failed = asyncio.run(_count(ids))
            peak_rss = max(peak_rss, rss_mib(service.pid))
            if active + failed >= n:
                break
            time.sleep(0.25)
        finished = time.time()
        cpu = meter.stop()
        probe.send_signal(signal.SIGTERM)
        probe.wait(60)
        samples = json.loads(probe_out.read_text())
        stats = _fake_stats(fake)
    finally:
        service.stop()
        fake.stop()
    elapsed = finished - started
    idle = window_stats(samples, started - IDLE_S, started)
    during = window_stats(samples, started, finished)
    burst = window_stats(samples, started, min(finished, started + 10))
    result = {
        "orders": n,
        "boot_s": boot_s,
        "poll_interval_ms": poll_ms,
        "max_attempts": int(300_000 / poll_ms),
        "all_active": active == n,
        "active": active,
        "failed": failed,
        "seconds_to_all_active": round(elapsed, 1),
        "payments": paid | {"seconds": round(paid_at - started, 2)},
        "lower_bound": bounds,
        "vs_do_bound": round(elapsed / bounds["do_limit_s"], 2),
        "vs_budget_bound": round(elapsed / bounds["our_budget_s"], 2),
        "do_requests": stats["requests"],
        "do_requests_by_route": stats["by_route"],
        "do_requests_per_droplet": round(stats["requests"] / n, 2),
        "rate_limited_429": stats["rate_limited"],
        "droplets": stats["droplets"],
        "max_droplets_per_order": stats["max_droplets_per_order_tag"],
        "probe_rate_per_s": PROBE_RATE,
        "probe_idle": idle,
        "probe_storm": during,
        "probe_first_10s": burst,
        "p99_storm_vs_idle": round(during["p99_ms"] / idle["p99_ms"], 2)
        if idle["p99_ms"]
        else None,
        "p99_first_10s_vs_idle": (
            round(burst["p99_ms"] / idle["p99_ms"], 2) if idle["p99_ms"] else None
        ),
        "cpu_pct": cpu,
        "peak_rss_mib": round(peak_rss, 1),
    }
    log(
        f"storm {n}: all ACTIVE in {elapsed:.1f}s (bounds {bounds}); DO requests "
        f"{stats['requests']} ({result['do_requests_per_droplet']}/droplet), 429s "
        f"{stats['rate_limited']}; probe p99 idle {idle['p99_ms']} ms, storm {during['p99_ms']} ms"
    )
    return result
