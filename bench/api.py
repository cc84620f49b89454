"""Phase 1 and 2: API throughput and latency, ours against the ceiling, same run.

For every repetition, endpoint and concurrency, each target gets one run of
the same length, the order of targets flipped on every repetition, so that
the machine's noise falls on all of them alike. Reported: the median over
repetitions with min-max spread, and ours / ceiling as the median of the
per-repetition ratios (each ratio pairs two runs made seconds apart).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import load, seed, stack
from bench.infra import INTERNAL_API_KEY, CpuMeter, Proc, log, postgres_pids
from bench.seed import IMAGE_ID, PLAN_ID

ENDPOINTS = ("detail", "list", "create", "pay")
LABELS = {
    "detail": "GET /api/v1/orders/{id}",
    "list": "GET /api/v1/orders?page=1&limit=10 (10,000 orders)",
    "create": "POST /api/v1/orders (3 catalog calls)",
    "pay": "POST /api/v1/internal/orders/{id}/payment-status PAID",
}
CREATE_BODY = json.dumps(
    {"planId": PLAN_ID, "imageId": IMAGE_ID, "duration": "MONTHLY", "couponCode": "HEMAT20"},
    separators=(",", ":"),
)


@dataclass
class Target:
    """One server under test; `restart` gives a fresh process (used before payment runs)."""

    name: str
    kind: str  # "ours" or "ceiling"
    starter: Callable[[], Proc]
    proc: Proc | None = None
    notes: str = ""
    # Started before the measured process and stopped with it, never measured:
    # the `order-service worker` beside an API-only `serve --no-duties` (issue 23).
    companion: Callable[[], Proc] | None = None
    companion_proc: Proc | None = None
    # The endpoints this target runs (the API-only variant is about payments).
    endpoints: tuple[str, ...] = ENDPOINTS

    def up(self) -> Proc:
        if self.companion is not None and (
            self.companion_proc is None or not self.companion_proc.alive()
        ):
            self.companion_proc = self.companion()
        if self.proc is None or not self.proc.alive():
            self.proc = self.starter()
        return self.proc

    def restart(self) -> Proc:
        self.down()
        return self.up()

    def down(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None
        if self.companion_proc is not None:
            self.companion_proc.stop()
            self.companion_proc = None


@dataclass
class ApiContext:
    workdir: Path
    catalog: Proc
    user_ids_file: Path
    pay_ids_file: Path
    pay_total: int
    pay_cursor: int = 0
    runs: list[dict[str, Any]] = field(default_factory=list)
    # Where the cursor is kept between phases (prepare.Setup.pay_cursor), if anywhere.
    setup: Any = None


def loads(ctx: ApiContext) -> dict[str, Callable[[], load.Load]]:
    reader = {"Authorization": f"Bearer {stack.token(seed.READ_USER)}"}
    creator = {
        "Authorization": f"Bearer {stack.token(seed.CREATOR_USER)}",
        "Content-Type": "application/json",
    }
    internal = {"X-API-Key": INTERNAL_API_KEY, "Content-Type": "application/json"}
    return {
        "detail": lambda: load.Load(
            "detail",
            script="detail.lua",
            script_args=[str(ctx.user_ids_file)],
            headers=reader,
            ids_file=str(ctx.user_ids_file),
            id_path="/api/v1/orders/{id}",
        ),
        "list": lambda: load.Load("list", path="/api/v1/orders?page=1&limit=10", headers=reader),
        "create": lambda: load.Load(
            "create",
            script="create.lua",
            script_args=[CREATE_BODY],
            headers=creator,
            method="POST",
            body=CREATE_BODY,
            path="/api/v1/orders",
        ),
        "pay": lambda: load.Load(
            "pay",
            script="pay.lua",
            script_args=[str(ctx.pay_ids_file), str(ctx.pay_cursor)],
            headers=internal,
            method="POST",
            body='{"status":"PAID","notes":"bench"}',
            ids_file=str(ctx.pay_ids_file),
            id_path="/api/v1/internal/orders/{id}/payment-status",
            sequential_ids=True,
            skip=ctx.pay_cursor,
        ),
    }


def one_run(
    ctx: ApiContext,
    target: Target,
    endpoint: str,
    connections: int,
    duration: float,
    *,
    rep: int,
    record: bool = True,
) -> dict[str, Any]:
    proc = target.up()
    spec = loads(ctx)[endpoint]()
    meter = CpuMeter({"server": proc.pids, "postgres": postgres_pids, "catalog": ctx.catalog.pids})
    result = load.run(proc.url, spec, connections=connections, duration_s=duration, meter=meter)
    if endpoint == "pay":
        # Every id is paid once: the next run starts after what this one may have used.
        ctx.pay_cursor += int(result["requests"]) + connections + 16
        if ctx.setup is not None:
            ctx.setup.pay_cursor = ctx.pay_cursor
        if ctx.pay_cursor > ctx.pay_total:
            log(f"WARNING: payable orders exhausted ({ctx.pay_cursor}/{ctx.pay_total})")
        if result["errors"] > result["requests"] * 0.01:
            log(f"WARNING: {result['errors']} of {result['requests']} payments failed")
    entry = {"target": target.name, "kind": target.kind, "endpoint": endpoint, "rep": rep}
    entry |= result
    if record:
        ctx.runs.append(entry)
        log(
            f"{endpoint:6} c{connections:<3} {target.name:12} rep {rep}: "
            f"{result['rps']:8.1f} req/s  p50 {result['p50_ms']:6.1f}  "
            f"p99 {result['p99_ms']:7.1f} ms  errors {result['errors']}  cpu {result['cpu_pct']}"
        )
    return entry


def warm(ctx: ApiContext, target: Target, endpoints: tuple[str, ...]) -> None:
    for endpoint in endpoints:
        one_run(ctx, target, endpoint, 16, 1, rep=-1, record=False)


def run_api(
    ctx: ApiContext,
    targets: list[Target],
    *,
    reps: int,
    duration: float,
    connections: tuple[int, ...] = (16, 64),
    endpoints: tuple[str, ...] = ENDPOINTS,
    restart_before_pay: bool = False,
) -> list[dict[str, Any]]:
    reads = tuple(e for e in endpoints if e != "pay")
    for target in targets:
        own_reads = tuple(e for e in reads if e in target.endpoints)
        if own_reads:  # a payments-only target starts when its payments do
            target.up()
            warm(ctx, target, own_reads)
    for rep in range(reps):
        order = targets if rep % 2 == 0 else list(reversed(targets))
        for endpoint in reads:
            for conns in connections:
                for target in order:
                    if endpoint in target.endpoints:
                        one_run(ctx, target, endpoint, conns, duration, rep=rep)
    if "pay" in endpoints:
        # Payments start provisioning (the service runs as users run it, provisioner
        # on). Before each payment run the previous runs' unfinished tasks are retired
        # in the database, so their workers lose their leases and stop instead of
        # loading this run (restart_before_pay: a fresh process instead).
        for rep in range(reps):
            order = targets if rep % 2 == 0 else list(reversed(targets))
            for conns in connections:
                for target in order:
                    if "pay" not in target.endpoints:
                        continue
                    if target.kind == "ours":
                        # Only this one of ours stays up (with the ceiling): all of them
                        # at once (four services, a worker, ~27 connections each) outgrew
                        # PostgreSQL's 100 connections.
                        for other in targets:
                            if other is not target and other.kind == "ours":
                                other.down()
                        seed.retire_unfinished_tasks()
                        if restart_before_pay:
                            target.restart()
                    warm(ctx, target, ("pay",))
                    one_run(ctx, target, "pay", conns, duration, rep=rep)
        seed.retire_unfinished_tasks()
    return ctx.runs


def loadgen_check(ctx: ApiContext, target: Target, duration: float) -> dict[str, Any]:
    """How fast the load generator goes against a handler that does nothing."""
    proc = target.up()
    meter = CpuMeter({"server": proc.pids})
    result = load.run(
        proc.url,
        load.Load("ping", path="/api/v1/health"),
        connections=64,
        duration_s=duration,
        meter=meter,
    )
    log(
        f"load generator check: {result['rps']} req/s against a no-op handler, "
        f"cpu {result['cpu_pct']}"
    )
    return result


# ------------------------------------------------------------------ summaries


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2) if values else 0.0


def summarize(runs: list[dict[str, Any]], ceiling: str = "ceiling") -> list[dict[str, Any]]:
    """One row per (target, endpoint, connections): medians, spread, ratio to the ceiling."""
    rows = []
    keys = sorted(
        {(r["target"], r["endpoint"], r["connections"]) for r in runs},
        key=lambda k: (ENDPOINTS.index(k[1]), k[2], k[0]),
    )
    for target, endpoint, conns in keys:
        mine = [
            r
            for r in runs
            if (r["target"], r["endpoint"], r["connections"]) == (target, endpoint, conns)
        ]
        base = {
            r["rep"]: r
            for r in runs
            if (r["target"], r["endpoint"], r["connections"]) == (ceiling, endpoint, conns)
        }
        ratios = [r["rps"] / base[r["rep"]]["rps"] for r in mine if r["rep"] in base]
        rps = [r["rps"] for r in mine]
        cpu = [r.get("cpu_pct", {}) for r in mine]
        rows.append(
            {
                "target": target,
                "kind": mine[0]["kind"],
                "endpoint": endpoint,
                "connections": conns,
                "reps": len(mine),
                "rps": _median(rps),
                "rps_min": min(rps),
                "rps_max": max(rps),
                "p50_ms": _median([r["p50_ms"] for r in mine]),
                "p95_ms": _median([r["p95_ms"] for r in mine]),
                "p99_ms": _median([r["p99_ms"] for r in mine]),
                "p99_ms_max": max(r["p99_ms"] for r in mine),
                "errors": sum(r["errors"] for r in mine),
                "ratio": round(statistics.median(ratios), 3) if ratios else None,
                "ratio_min": round(min(ratios), 3) if ratios else None,
                "ratio_max": round(max(ratios), 3) if ratios else None,
                "cpu_server": _median([c.get("server", 0) for c in cpu]),
                "cpu_postgres": _median([c.get("postgres", 0) for c in cpu]),
                "cpu_catalog": _median([c.get("catalog", 0) for c in cpu]),
                "cpu_loadgen": _median([c.get("loadgen", 0) for c in cpu]),
            }
        )
    return rows
