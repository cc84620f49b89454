"""A storm's figures from what was sampled: bounds, probe windows, the result record.

`bench/storm.py` runs the storm and fills a `Watch` (timeline rows, payments,
the kill, the end); `storm_result` turns it, the probe's samples and the fake's
counters into the record `storm.json` keeps and docs/benchmarks.md renders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from bench import timeline
from bench.infra import log

DO_PER_MINUTE = 250  # what the fake enforces, like DO
BUDGET_PER_MINUTE = 225  # the service's default budget (DIGITALOCEAN_RATE_PER_MINUTE)
BUDGET_SKEW_S = 2.0  # RateBudget counts a send for 60 s + this skew
PROBE_RATE = 50.0
IDLE_S = 6.0
SAMPLE_S = 0.25  # timeline sampling interval
P99_BUCKET_S = 5.0


def lower_bounds(n: int, boot_s: float, accounts: int = 1) -> dict[str, float]:
    """Fastest possible time to all ACTIVE, counting only the n creates and the boot.

    A rolling window of W requests per 60 s lets the k-th request (0-based) go
    at floor(k / W) windows; the last droplet then boots for `boot_s`. With several
    accounts (each its own window) the n creates are spread evenly over them.
    """
    per_account = math.ceil(n / accounts)
    return {
        "do_limit_s": 60 * math.floor((per_account - 1) / DO_PER_MINUTE) + boot_s,
        "our_budget_s": (60 + BUDGET_SKEW_S) * math.floor((per_account - 1) / BUDGET_PER_MINUTE)
        + boot_s,
    }


def per_order_bounds(n: int, boot_s: float, accounts: int = 1) -> list[float]:
    """Issue 23's bound of each order's PAID -> ACTIVE: the i-th create (0-based, spread
    evenly over the accounts) cannot go before budget window floor(i / (225 x accounts)),
    then its droplet boots."""
    per_window = BUDGET_PER_MINUTE * accounts
    return [(60 + BUDGET_SKEW_S) * (i // per_window) + boot_s for i in range(n)]


def paid_to_active(seconds: list[float], bounds: list[float]) -> dict[str, Any]:
    """Each order's PAID -> ACTIVE (from the database's paid_at and activated_at), sorted,
    against the per-order bounds: the mean against the bounds' mean, the last against the
    last bound (issue 23's two goals), and the distribution for the picture."""
    if not seconds:
        return {"orders": 0}
    ours = sorted(seconds)
    mean, bound_mean = sum(ours) / len(ours), sum(bounds) / len(bounds)
    return {
        "orders": len(ours),
        "mean_s": round(mean, 2),
        "p50_s": round(timeline.percentile(ours, 50), 2),
        "p95_s": round(timeline.percentile(ours, 95), 2),
        "max_s": round(ours[-1], 2),
        "bound_mean_s": round(bound_mean, 2),
        "bound_max_s": round(bounds[-1], 2),
        "mean_vs_bound": round(mean / bound_mean, 3) if bound_mean else None,
        "last_vs_bound": round(ours[-1] / bounds[-1], 3) if bounds[-1] else None,
        "sorted_s": [round(v, 2) for v in ours],
    }


def per_account_busiest(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The busiest rolling minute of each fake account (timeline rows carry each account's
    cumulative requests): DO's 250/min is per token, so the goal is per account."""
    names = sorted({name for row in rows for name in row.get("do_requests_by_account", {})})
    return {
        name: timeline.busiest_minute(
            [(r["t_s"], int(r.get("do_requests_by_account", {}).get(name, 0))) for r in rows]
        )
        for name in names
    }


def window_stats(samples: list[list[float]], start: float, end: float) -> dict[str, Any]:
    chosen = [s for s in samples if start <= s[0] < end]
    latencies = [s[1] for s in chosen]
    return {
        "requests": len(chosen),
        "errors": sum(1 for s in chosen if s[2] != 200),
        "p50_ms": timeline.percentile(latencies, 50),
        "p95_ms": timeline.percentile(latencies, 95),
        "p99_ms": timeline.percentile(latencies, 99),
        "max_ms": round(max(latencies), 2) if latencies else 0.0,
    }


def _latencies(samples: list[list[float]], start: float, end: float) -> list[float]:
    return [round(s[1], 2) for s in samples if start <= s[0] < end]


def roles_storms(storms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The roles storms of one account, whose probes issue 23's goal pools (the storm
    over several accounts is issue 20's)."""
    return [s for s in storms if s.get("roles") and s.get("accounts", 1) == 1]


def pooled_probe(storms: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The probe's idle and storm windows of several storms pooled into one sample each:
    p95 (issue 23's goal: storm < 2x idle) and p99 beside it."""
    idle = [v for s in storms for v in (s.get("probe_latencies_ms") or {}).get("idle", [])]
    storm = [v for s in storms for v in (s.get("probe_latencies_ms") or {}).get("storm", [])]
    if not idle or not storm:
        return None
    figures = {
        "storms": len(storms),
        "idle_requests": len(idle),
        "storm_requests": len(storm),
        **{f"idle_{k}_ms": timeline.percentile(idle, p) for k, p in (("p95", 95), ("p99", 99))},
        **{f"storm_{k}_ms": timeline.percentile(storm, p) for k, p in (("p95", 95), ("p99", 99))},
    }
    figures["p95_storm_vs_idle"] = round(figures["storm_p95_ms"] / figures["idle_p95_ms"], 2)
    figures["p99_storm_vs_idle"] = round(figures["storm_p99_ms"] / figures["idle_p99_ms"], 2)
    return figures


@dataclass
class Watch:
    """What the watcher saw: the timeline rows, the payments, the kill, the end."""

    started: float
    rows: list[dict[str, Any]] = field(default_factory=list)
    paid: dict[str, Any] = field(default_factory=dict)
    paid_at: float = 0.0
    finished: float = 0.0
    active: int = 0
    failed: int = 0
    peak_rss: float = 0.0
    kill: dict[str, Any] | None = None
    missed_samples: int = 0  # the fake did not answer /_fake/stats in time


def storm_result(
    n: int,
    processes: int,
    split: bool,
    boot_s: float,
    poll_ms: int,
    bounds: dict[str, float],
    watch: Watch,
    samples: list[list[float]],
    stats: dict[str, Any],
    cpu: dict[str, float],
    *,
    accounts: int = 1,
    roles: bool = False,
    paid_to_active_s: list[float] | None = None,
) -> dict[str, Any]:
    started, finished = watch.started, watch.finished
    elapsed = finished - started
    idle = window_stats(samples, started - IDLE_S, started)
    during = window_stats(samples, started, finished)
    burst = window_stats(samples, started, min(finished, started + 10))
    busiest = timeline.busiest_minute([(r["t_s"], r["do_requests"]) for r in watch.rows])
    by_account = per_account_busiest(watch.rows)
    result = {
        "orders": n,
        "processes": processes,
        "split": split,
        # Issue 23's roles: the probe on an API-only process, payments to another, one worker.
        "roles": roles,
        "accounts": accounts,
        "kill": watch.kill,
        "boot_s": boot_s,
        "poll_interval_ms": poll_ms,
        "max_attempts": int(300_000 / poll_ms),
        "all_active": watch.active == n,
        "active": watch.active,
        "failed": watch.failed,
        "seconds_to_all_active": round(elapsed, 1),
        # Unanswered payments (a timeout before all were answered) count as errors.
        "payments": (watch.paid or {"ok": 0, "errors": n, "p50_ms": 0.0, "p99_ms": 0.0})
        | {"seconds": round((watch.paid_at or finished) - started, 2)},
        "lower_bound": bounds,
        "vs_do_bound": round(elapsed / bounds["do_limit_s"], 2),
        "vs_budget_bound": round(elapsed / bounds["our_budget_s"], 2),
        "do_requests": stats["requests"],
        "do_requests_by_route": stats["by_route"],
        "do_requests_per_droplet": round(stats["requests"] / n, 2),
        "rate_limited_429": stats["rate_limited"],
        "busiest_minute": busiest,
        # Per fake account (= per token, where DO's 250/min applies): busiest minute, 429s,
        # droplets made there (its own request count includes its 429s).
        "accounts_detail": {
            name: {
                "busiest_minute": by_account.get(name),
                "requests": summary["requests"],
                "rate_limited_429": summary["rate_limited"],
                "droplets": summary["droplets"],
            }
            for name, summary in (stats.get("accounts") or {}).items()
        },
        "max_busiest_minute_per_account": max(
            (b["requests"] for b in by_account.values()), default=busiest["requests"]
        ),
        "max_busiest_minute_upper_per_account": max(
            (b["upper"] for b in by_account.values()), default=busiest["upper"]
        ),
        "paid_to_active": paid_to_active(
            paid_to_active_s or [], per_order_bounds(n, boot_s, accounts)
        ),
        "droplets": stats["droplets"],
        "max_droplets_per_order": stats["max_droplets_per_order_tag"],
        "probe_rate_per_s": PROBE_RATE,
        "probe_samples": len(samples),  # 0: the probe had to be killed (see the log)
        "probe_idle": idle,
        "probe_storm": during,
        "probe_first_10s": burst,
        # The raw latencies of both windows, for pooling over repeated storms (the roles
        # probe's p95 goal is pooled over 3 storms).
        "probe_latencies_ms": {
            "idle": _latencies(samples, started - IDLE_S, started),
            "storm": _latencies(samples, started, finished),
        }
        if roles
        else None,
        "p99_storm_vs_idle": round(during["p99_ms"] / idle["p99_ms"], 2)
        if idle["p99_ms"]
        else None,
        "p99_first_10s_vs_idle": (
            round(burst["p99_ms"] / idle["p99_ms"], 2) if idle["p99_ms"] else None
        ),
        "cpu_pct": cpu,
        "peak_rss_mib": round(watch.peak_rss, 1),
        "sample_interval_s": SAMPLE_S,
        "missed_samples": watch.missed_samples,
        "timeline": watch.rows,
        # From one bucket before the storm: the probe's own first second is not idle latency.
        "probe_p99_timeline": timeline.p99_buckets(
            [s for s in samples if s[0] >= started - P99_BUCKET_S], started, P99_BUCKET_S
        ),
    }
    how = f", {watch.kill['process']} SIGKILLed at {watch.kill['at_s']}s" if watch.kill else ""
    how += ", split: reads only on the probed one" if split else ""
    how += ", roles: probe and payments on API-only processes, one worker" if roles else ""
    how += f", {accounts} DO accounts" if accounts > 1 else ""
    per_order = result["paid_to_active"]
    log(
        f"storm {n} x {processes} process(es){how}: "
        f"{watch.active}/{n} ACTIVE in {elapsed:.1f}s (bounds {bounds}); DO requests "
        f"{stats['requests']} ({result['do_requests_per_droplet']}/droplet), 429s "
        f"{stats['rate_limited']}, busiest minute {busiest['requests']} (<= {busiest['upper']}); "
        f"probe p99 idle {idle['p99_ms']} ms, storm {during['p99_ms']} ms; PAID -> ACTIVE mean "
        f"{per_order.get('mean_s')} s vs bound {per_order.get('bound_mean_s')} s"
    )
    return result
