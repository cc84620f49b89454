"""Phase 3: a payment storm against the fake DigitalOcean enforcing DO's limits.

N orders (created beforehand) are paid at once through the API of one or more
`order-service serve` processes on the same database (payments spread
round-robin over them); the harness then watches the database until every one
is ACTIVE, sampling a timeline as it goes (orders ACTIVE, the fake's cumulative
requests and 429s). Optionally one process is SIGKILLed mid-storm. Meanwhile a
light open-loop probe (its own process) reads order details from the first
process, and the same probe ran idle just before, so the storm's effect on the
API is a ratio of two measurements of the same process minutes apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import seed, stack, timeline
from bench.infra import INTERNAL_API_KEY, REPO, CpuMeter, Proc, clean_env, db_url, log, rss_mib
from bench.storm_result import (
    DO_PER_MINUTE,
    IDLE_S,
    PROBE_RATE,
    SAMPLE_S,
    Watch,
    lower_bounds,
    storm_result,
)
from bench.storm_setup import fake_tokens, paid_to_active_seconds, register_accounts

# The probed process of a split storm: reads only (docs/operations.md, "Reads during a storm").
READER_ENV = {"PROVISIONING_ENABLED": "false", "LIFECYCLE_ENABLED": "false"}


PAY_CONNECTIONS = 100


async def _pay_all(urls: str | list[str], ids: list[str]) -> dict[str, Any]:
    """Pay every order at once (100 connections in all), order i through urls[i % len].

    100 senders take the orders in turn: one coroutine per order (1,500 of them waiting
    on httpx's pool of 100) made the harness itself the bottleneck - it spent the CPU
    of a core on its pool's queue while the service was idle, and a 1,500-order storm's
    payments took 50 s to send."""
    bases = [urls] if isinstance(urls, str) else urls
    limits = httpx.Limits(
        max_connections=PAY_CONNECTIONS, max_keepalive_connections=PAY_CONNECTIONS
    )
    headers = {"X-API-Key": INTERNAL_API_KEY}
    results: list[tuple[int, float]] = []
    no_answer: Counter[str] = Counter()
    queue = iter(enumerate(ids))
    async with httpx.AsyncClient(limits=limits, headers=headers) as client:

        async def pay(index: int, order_id: str) -> tuple[int, float]:
            began = time.perf_counter()
            try:
                answer = await client.post(
                    f"{bases[index % len(bases)]}/api/v1/internal/orders/{order_id}/payment-status",
                    json={"status": "PAID", "notes": "storm"},
                    timeout=60,
                )
                status = answer.status_code
            except httpx.HTTPError as error:
                status = 0
                no_answer[type(error).__name__] += 1
            return status, time.perf_counter() - began

        async def sender() -> None:
            for index, order_id in queue:  # shared: each order is taken by one sender
                results.append(await pay(index, order_id))

        await asyncio.gather(*(sender() for _ in range(PAY_CONNECTIONS)))
    return {
        "ok": sum(1 for s, _ in results if s == 200),
        "errors": sum(1 for s, _ in results if s != 200),
        # 0: no answer (connection error or the client's timeout).
        "error_statuses": dict(Counter(str(s) for s, _ in results if s != 200)),
        "no_answer": dict(no_answer),  # by httpx exception: what status 0 was
        "p50_ms": timeline.percentile([t * 1000 for _, t in results], 50),
        "p99_ms": timeline.percentile([t * 1000 for _, t in results], 99),
    }


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


def reset_shared_budget() -> None:
    """Bench-only: forget the DO budget the previous storm's processes drew from the
    database (grants and pauses), as each storm gets a fresh fake DO with fresh limits.
    Its grants would otherwise count for another minute and slow this storm's start.
    A schema without the shared budget (before migration 0004) has nothing to reset."""
    asyncio.run(
        seed.execute(
            "DO $$ BEGIN IF to_regclass('do_budget_grants') IS NOT NULL THEN "
            "DELETE FROM do_budget_grants; UPDATE do_budget SET paused_until = NULL; "
            "END IF; END $$"
        )
    )


def _stop_probe(probe: subprocess.Popen[bytes], out: Path) -> list[list[float]]:
    """SIGTERM the probe and read its samples; a probe that does not end (thousands of
    requests queued on a stalled server, a starved machine) is killed and
    its samples are lost (said in the log), rather than losing the whole storm."""
    probe.send_signal(signal.SIGTERM)
    try:
        probe.wait(120)
    except subprocess.TimeoutExpired:
        probe.kill()
        probe.wait(10)
        log("storm: the probe did not stop within 120 s; killed, its samples are lost")
        return []
    return json.loads(out.read_text())


def _kill(proc: Proc) -> list[int]:
    """SIGKILL a service process and its children: no shutdown, its leases stay taken."""
    pids = proc.pids()
    for pid in reversed(pids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.process.wait(10)
    return pids


async def _count_orders(conn: asyncpg.Connection, ids: list[str], watch: Watch) -> None:
    """Count the storm's orders every SAMPLE_S until all are ACTIVE or FAILED."""
    while True:
        tick = time.time()
        row = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE status = 'ACTIVE') AS active, "
            "count(*) FILTER (WHERE status = 'FAILED') AS failed "
            "FROM orders WHERE id = ANY($1::uuid[])",
            ids,
        )
        watch.active, watch.failed = int(row["active"]), int(row["failed"])
        if watch.paid_at and watch.active + watch.failed >= len(ids):
            watch.finished = time.time()
            return
        await asyncio.sleep(max(0.0, SAMPLE_S - (time.time() - tick)))


async def _sample(
    fake_client: httpx.AsyncClient, services: list[Proc], watch: Watch, tick: float
) -> dict[str, Any] | None:
    """One timeline row: the latest order counts, the fake's counters; None if the fake
    did not answer."""
    try:
        stats = (await fake_client.get("/_fake/stats")).json()
    except httpx.HTTPError:
        return None
    alive = [s for s in services if s.alive()]
    for service in alive:
        with contextlib.suppress(OSError, RuntimeError):
            watch.peak_rss = max(watch.peak_rss, rss_mib(service.pid))
    return {
        "t_s": round(tick - watch.started, 3),
        "active": watch.active,
        "failed": watch.failed,
        "do_requests": int(stats["requests"]),
        "do_429": int(stats["rate_limited"]),
        "do_requests_by_account": {
            name: int(a["requests"]) for name, a in (stats.get("accounts") or {}).items()
        },
        "processes": len(alive),
    }


async def _storm(
    services: list[Proc],
    payers: list[Proc],
    fake: Proc,
    ids: list[str],
    *,
    timeout_s: float,
    kill_after_s: float | None,
) -> Watch:
    """Pay everything at once and, meanwhile and after, sample the timeline every SAMPLE_S.

    The orders are counted in a task of their own: a slow count (PostgreSQL busy with the
    payments) must not leave gaps in the fake's request counter, which the busiest rolling
    minute is computed from. Each timeline row has the latest count seen.
    """
    n = len(ids)
    # Connected before the clock starts, so the first sample is taken at ~0 s (the baseline
    # of the rolling minute) rather than after the payments took the event loop.
    conn = await asyncpg.connect(db_url("postgresql"))
    fake_client = httpx.AsyncClient(base_url=fake.url, timeout=10)
    watch = Watch(started=time.time())
    pay_task = asyncio.create_task(_pay_all([s.url for s in payers], ids))

    def paid(task: asyncio.Task[dict[str, Any]]) -> None:
        if not task.cancelled() and task.exception() is None:
            watch.paid, watch.paid_at = task.result(), time.time()

    pay_task.add_done_callback(paid)
    counter = asyncio.create_task(_count_orders(conn, ids, watch))
    try:
        async with fake_client:
            while True:
                tick = time.time()
                row = await _sample(fake_client, services, watch, tick)
                if row is None:
                    # A fake too busy to answer in time (the largest storms): this
                    # sample is missed, not the storm; the gap widens the busiest
                    # minute's upper estimate, which says so.
                    watch.missed_samples += 1
                else:
                    watch.rows.append(row)
                # Kill only once every payment was answered: the storm measures the
                # provisioning work a dead process leaves, not payments lost with it.
                if (
                    kill_after_s is not None
                    and watch.kill is None
                    and watch.paid_at
                    and tick - watch.started >= kill_after_s
                ):
                    victim = services[-1]
                    at = time.time() - watch.started
                    pids = _kill(victim)
                    watch.kill = {"process": victim.name, "pids": pids, "at_s": round(at, 2)}
                    log(f"storm: SIGKILLed {victim.name} (pids {pids}) at {at:.1f}s")
                if counter.done():
                    counter.result()  # raises if counting failed
                    # One last row, with the counts that ended the storm.
                    if watch.rows:
                        watch.rows[-1] |= {"active": watch.active, "failed": watch.failed}
                    break
                if tick - watch.started >= timeout_s:
                    log(f"storm: timeout after {timeout_s:.0f}s ({watch.active}/{n} ACTIVE)")
                    break
                await asyncio.sleep(max(0.0, SAMPLE_S - (time.time() - tick)))
    finally:
        for task in (counter, pay_task):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await conn.close()
    watch.finished = watch.finished or time.time()
    return watch


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
    processes: int = 1,
    kill_after_s: float | None = None,
    split: bool = False,
    accounts: int = 1,
    roles: bool = False,
) -> dict[str, Any]:
    """The storm with `processes` service processes on one database; with
    `kill_after_s` (and processes >= 2) the last one is SIGKILLed that long after
    the payments were sent (at the earliest once all were answered). With `split` the
    first (probed) process serves reads only: provisioning and the lifecycle off, no
    payments sent to it; the others take the payments and run the duties. With `roles`
    (issue 23) both processes are `serve --no-duties` (the probed one, and the one the
    payments go to) and one `order-service worker` runs the duties. With `accounts` > 1
    (issue 20) the fake DO has that many tokens, each an account with its own 250/min,
    and the service gets the extra ones through its internal API before the storm."""
    if kill_after_s is not None and (processes < 2 or roles):
        raise ValueError("killing a process mid-storm needs processes >= 2 (and no roles)")
    if (split or roles) and processes != 2:
        raise ValueError("a split or roles storm has a reader process and one other")
    n = len(ids)
    bounds = lower_bounds(n, boot_s, accounts)
    timeout_s = timeout_s or bounds["our_budget_s"] * 2.5 + 60
    tag = (
        f"{n}-{processes}p"
        + ("-split" if split else "")
        + ("-roles" if roles else "")
        + (f"-{accounts}acc" if accounts > 1 else "")
        + ("-kill" if kill_after_s is not None else "")
    )
    seed.retire_unfinished_tasks()
    # Each storm gets a fresh fake DO: what earlier storms made or added is gone there.
    seed.forget_droplets()
    seed.drop_extra_accounts()
    reset_shared_budget()
    tokens = fake_tokens(accounts)
    fake = stack.start_fake_do(
        workdir, boot_seconds=boot_s, per_minute=DO_PER_MINUTE, tokens=tokens
    )
    env = stack.service_env(
        catalog,
        fake,
        provisioning_poll_interval_ms=str(poll_ms),
        # The default deadline (5 s x 60 = 300 s) at the faster poll interval.
        provisioning_max_attempts=str(int(300_000 / poll_ms)),
    )
    services: list[Proc] = []
    worker: Proc | None = None
    probe: subprocess.Popen[bytes] | None = None
    probe_out = workdir / f"probe-{tag}.json"
    try:
        for index in range(processes):
            name = f"service-storm-{tag}" + (f"-{index + 1}" if processes > 1 else "")
            own_env = env | READER_ENV if split and index == 0 else env
            services.append(
                stack.start_service(workdir, own_env, src=src, name=name, duties=not roles)
            )
        if roles:
            worker = stack.start_worker(workdir, env, name=f"worker-storm-{tag}")
        register_accounts(services[-1], tokens)
        probe = start_probe(services[0], user_ids_file, probe_out)
        time.sleep(IDLE_S + 1)  # one second for the probe to start
        duty_pids = worker.pids if worker is not None else (lambda: [])
        meter = CpuMeter(
            {
                "server": lambda: [p for s in services for p in s.pids()] + duty_pids(),
                "fake_do": fake.pids,
            }
        )
        meter.start()
        log(f"storm: paying {n} orders at once over {processes} process(es)")
        payers = services[1:] if split or roles else services
        watch = asyncio.run(
            _storm(services, payers, fake, ids, timeout_s=timeout_s, kill_after_s=kill_after_s)
        )
        cpu = meter.stop()
        samples = _stop_probe(probe, probe_out)
        stats = _fake_stats(fake)
        per_order = asyncio.run(paid_to_active_seconds(ids))
    finally:
        if probe is not None and probe.poll() is None:  # an error before the probe was stopped
            probe.kill()
            probe.wait(10)
        for service in services:
            service.stop()
        if worker is not None:
            worker.stop()
        fake.stop()
    return storm_result(
        n,
        processes,
        split,
        boot_s,
        poll_ms,
        bounds,
        watch,
        samples,
        stats,
        cpu,
        accounts=accounts,
        roles=roles,
        paid_to_active_s=per_order,
    )
