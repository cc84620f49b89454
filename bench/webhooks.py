"""Phase `webhooks` (issue 10): delivery throughput and latency, and a dead endpoint's cost.

1. **Storm**: N seeded orders (default 1,000) are paid at once through the API of
   one `order-service serve` process with ONE endpoint registered for `["*"]`:
   `bench/webhook_sink.py` in its own process on loopback, answering 204 at
   once and recording when each `webhook-id` arrived. When every payment is
   answered, every event stamped and no delivery pending, the feed
   (`GET /api/v1/internal/events`) is read in full and every event of those
   orders must have arrived at least once. Latency = first arrival (the
   sink's clock) - the event's `createdAt` (the service's clock: the same
   machine's).
2. **Dead endpoint**: the open-loop probe (`bench/probe.py`, GET order detail)
   while orders are created and paid at a steady rate, once with no endpoint
   and once with an endpoint that accepts connections and never answers
   (`webhook_sink --hang`; each attempt ends at WEBHOOK_TIMEOUT, default 10 s),
   alternating the order over the repetitions; a fresh service process and
   no deliveries left from the previous run each time.

Provisioning is OFF in both (`PROVISIONING_ENABLED=false`): a paid order then
stays PROVISIONING, and each payment writes `order.paid` and
`order.provisioning`. With provisioning on, the DO budget (at most 250
creates a minute) would spread 1,000 activations over more than four
minutes and this would measure the budget, not the webhooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import seed, stack
from bench.api import CREATE_BODY
from bench.infra import (
    INTERNAL_API_KEY,
    REPO,
    CpuMeter,
    Proc,
    clean_env,
    db_url,
    free_port,
    log,
    start,
)
from bench.storm import _pay_all, _stop_probe, start_probe
from bench.storm_result import PROBE_RATE, window_stats
from bench.webhook_math import delivery_summary, match_arrivals, p99_ratio

WEBHOOK_USER = "bench-webhooks"
STORM_ORDERS = 1000
LOAD_RATE = 5.0  # orders created and then paid per second, in the dead-endpoint runs
DEAD_SECONDS = 20.0
DEAD_REPS = 3
PROBE_SETTLE_S = 2.0  # the probe's first requests (connections) are not the measure
POLL_S = 0.25
SERVICE_ENV = {"provisioning_enabled": "false"}


# ------------------------------------------------------------------ the pieces


def _start_sink(workdir: Path, port: int, *, secret: str | None = None, hang: bool = False) -> Proc:
    argv = [sys.executable, "-m", "bench.webhook_sink", "--port", str(port)]
    if secret:
        argv += ["--secret", secret]
    if hang:
        argv.append("--hang")
    return start(
        "webhook-sink-dead" if hang else "webhook-sink",
        argv,
        env=clean_env({"PYTHONPATH": str(REPO)}),
        port=port,
        ready_path="/health",
        workdir=workdir,
    )


def _register(service: Proc, url: str) -> str:
    """One endpoint for every event; returns its secret."""
    answer = httpx.post(
        f"{service.url}/api/v1/internal/webhooks",
        json={"url": url, "events": ["*"], "description": "bench"},
        headers={"X-API-Key": INTERNAL_API_KEY},
        timeout=10,
    )
    answer.raise_for_status()
    return str(answer.json()["data"]["secret"])


def _forget_webhooks() -> None:
    """Bench database only: no endpoint and no delivery left from an earlier run."""
    asyncio.run(seed.execute("DELETE FROM webhook_deliveries"))
    asyncio.run(seed.execute("DELETE FROM webhook_endpoints"))


def _seed_orders(n: int) -> list[str]:
    rows = seed.Rows()
    now = datetime.now(UTC).replace(microsecond=0)
    ids = [str(rows.add_order(WEBHOOK_USER, "PENDING_PAYMENT", now)) for _ in range(n)]

    async def copy() -> None:
        conn = await asyncpg.connect(db_url("postgresql"))
        try:
            await seed.copy_rows(conn, rows)
            await conn.execute("ANALYZE orders")
        finally:
            await conn.close()

    asyncio.run(copy())
    return ids


async def _read_feed(base: str, order_ids: set[str]) -> list[dict[str, Any]]:
    """The whole feed, page by page with `after = meta.next`, kept to these orders."""
    events: list[dict[str, Any]] = []
    after = 0
    async with httpx.AsyncClient(headers={"X-API-Key": INTERNAL_API_KEY}, timeout=30) as client:
        while True:
            answer = await client.get(
                f"{base}/api/v1/internal/events", params={"after": after, "limit": 500}
            )
            answer.raise_for_status()
            page = answer.json()
            events += [e for e in page["data"] if e.get("orderId") in order_ids]
            if not page["data"]:
                return events
            after = page["meta"]["next"]


async def _backlog(conn: asyncpg.Connection) -> dict[str, int]:
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM events WHERE sequence IS NULL) AS unstamped, "
        "count(*) FILTER (WHERE status = 'PENDING') AS pending, "
        "count(*) FILTER (WHERE status = 'FAILED') AS failed, "
        "count(*) FILTER (WHERE status = 'DELIVERED') AS delivered, "
        # In flight: leased by a sender now; attempts: finished ones (a hanging attempt
        # counts when WEBHOOK_TIMEOUT ends it).
        "count(*) FILTER (WHERE status = 'PENDING' AND lease_owner IS NOT NULL) AS in_flight, "
        "coalesce(sum(attempts), 0) AS attempts FROM webhook_deliveries"
    )
    return {k: int(v) for k, v in dict(row).items()}


async def _storm(service: Proc, ids: list[str], timeout_s: float) -> dict[str, Any]:
    conn = await asyncpg.connect(db_url("postgresql"))
    try:
        started = time.time()
        pay = asyncio.create_task(_pay_all(service.url, ids))
        backlog: dict[str, int] = {}
        while time.time() - started < timeout_s:
            await asyncio.sleep(POLL_S)
            backlog = await _backlog(conn)
            if pay.done() and backlog["unstamped"] == 0 and backlog["pending"] == 0:
                break
        else:
            log(f"webhooks: timeout after {timeout_s:.0f}s with {backlog}")
        paid = await pay if pay.done() else {"ok": 0, "errors": len(ids)}
        if not pay.done():
            pay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pay
        return {"started": started, "drained": time.time(), "payments": paid, "backlog": backlog}
    finally:
        await conn.close()


def run_delivery_storm(
    workdir: Path, catalog: Proc, n: int, *, timeout_s: float | None = None
) -> dict[str, Any]:
    # Generous: two events per order at a few per second would still finish.
    timeout_s = timeout_s or max(300.0, n * 0.6)
    ids = _seed_orders(n)
    _forget_webhooks()
    service = stack.start_service(
        workdir, stack.service_env(catalog, None, **SERVICE_ENV), name="service-webhooks"
    )
    sink: Proc | None = None
    try:
        port = free_port()
        secret = _register(service, f"http://127.0.0.1:{port}/hooks")
        sink = _start_sink(workdir, port, secret=secret)
        meter = CpuMeter({"service": service.pids, "sink": sink.pids})
        meter.start()
        log(f"webhooks: paying {n} orders at once, one endpoint for every event")
        storm = asyncio.run(_storm(service, ids, timeout_s))
        cpu = meter.stop()
        received = httpx.get(f"{sink.url}/_arrivals", timeout=30).json()
        events = asyncio.run(_read_feed(service.url, set(ids)))
    finally:
        if sink is not None:
            sink.stop()
        service.stop()
    summary = delivery_summary(match_arrivals(events, received["arrivals"]), storm["started"])
    result = {
        "orders": n,
        "provisioning": "off",
        "payments": storm["payments"],
        "backlog_at_end": storm["backlog"],
        "rejected_signatures": received["rejected"],
        "cpu_pct": cpu,
        **summary,
    }
    log(
        f"webhooks: {summary['delivered']}/{summary['events']} events delivered in "
        f"{summary['seconds_to_last']} s ({summary['deliveries_per_s']}/s), latency p50 "
        f"{summary['latency_p50_ms']} ms, p99 {summary['latency_p99_ms']} ms"
    )
    return result


async def _steady_load(base: str, rate: float, seconds: float) -> dict[str, int]:
    """Open loop: every 1/rate s, create an order (as a user) and then pay it (ops)."""
    user = {"Authorization": f"Bearer {stack.token(seed.CREATOR_USER)}"}
    ops = {"X-API-Key": INTERNAL_API_KEY}
    counts: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:

        async def one() -> None:
            try:
                made = await client.post(
                    "/api/v1/orders",
                    content=CREATE_BODY,
                    headers=user | {"Content-Type": "application/json"},
                )
                counts[f"create {made.status_code}"] += 1
                if made.status_code == 201:
                    order_id = made.json()["data"]["id"]
                    paid = await client.post(
                        f"/api/v1/internal/orders/{order_id}/payment-status",
                        json={"status": "PAID", "notes": "bench"},
                        headers=ops,
                    )
                    counts[f"pay {paid.status_code}"] += 1
            except httpx.HTTPError:
                counts["error"] += 1

        tasks = []
        began = time.monotonic()
        for k in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, began + k / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return dict(counts)


def _dead_run(
    workdir: Path,
    catalog: Proc,
    user_ids_file: Path,
    setup: str,
    rep: int,
    seconds: float,
    dead: Proc | None,
) -> dict[str, Any]:
    _forget_webhooks()
    name = f"service-webhooks-{setup}-{rep}"
    service = stack.start_service(
        workdir, stack.service_env(catalog, None, **SERVICE_ENV), name=name
    )
    probe_out = workdir / f"probe-webhooks-{setup}-{rep}.json"
    probe = None
    try:
        if setup == "dead" and dead is not None:
            _register(service, f"{dead.url}/hooks")
        probe = start_probe(service, user_ids_file, probe_out)
        time.sleep(PROBE_SETTLE_S + 1)
        started = time.time()
        load = asyncio.run(_steady_load(service.url, LOAD_RATE, seconds))
        ended = time.time()
        samples = _stop_probe(probe, probe_out)
        backlog = asyncio.run(_backlog_once())
    finally:
        if probe is not None and probe.poll() is None:
            probe.kill()
            probe.wait(10)
        service.stop()
    stats = window_stats(samples, started, ended)
    log(
        f"webhooks {setup} rep {rep}: probe p99 {stats['p99_ms']} ms over {stats['requests']} "
        f"requests; load {load}; deliveries {backlog}"
    )
    return {
        "setup": setup,
        "rep": rep,
        "seconds": round(ended - started, 1),
        "load": load,
        "probe": stats,
        "deliveries_at_end": backlog,
    }


async def _backlog_once() -> dict[str, int]:
    conn = await asyncpg.connect(db_url("postgresql"))
    try:
        return await _backlog(conn)
    finally:
        await conn.close()


def run_dead_endpoint(
    workdir: Path, catalog: Proc, user_ids_file: Path, *, reps: int, seconds: float
) -> dict[str, Any]:
    dead = _start_sink(workdir, free_port(), hang=True)
    runs = []
    try:
        for rep in range(reps):
            for setup in ("none", "dead") if rep % 2 == 0 else ("dead", "none"):
                runs.append(_dead_run(workdir, catalog, user_ids_file, setup, rep, seconds, dead))
    finally:
        dead.stop()
    return {
        "reps": reps,
        "seconds": seconds,
        "load_rate_per_s": LOAD_RATE,
        "probe_rate_per_s": PROBE_RATE,
        "runs": runs,
        "summary": p99_ratio(runs),
    }


def run_webhooks(
    workdir: Path,
    catalog: Proc,
    user_ids_file: Path,
    *,
    orders: int = STORM_ORDERS,
    reps: int = DEAD_REPS,
    seconds: float = DEAD_SECONDS,
) -> dict[str, Any]:
    storm = run_delivery_storm(workdir, catalog, orders)
    dead = run_dead_endpoint(workdir, catalog, user_ids_file, reps=reps, seconds=seconds)
    _forget_webhooks()
    return {"storm": storm, "dead_endpoint": dead}
