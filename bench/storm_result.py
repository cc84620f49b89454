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


def lower_bounds(n: int, boot_s: float) -> dict[str, float]:
    """Fastest possible time to all ACTIVE, counting only the n creates and the boot.

    A rolling window of W requests per 60 s lets the k-th request (0-based) go
    at floor(k / W) windows; the last droplet then boots for `boot_s`.
    """
    return {
        "do_limit_s": 60 * math.floor((n - 1) / DO_PER_MINUTE) + boot_s,
        "our_budget_s": (60 + BUDGET_SKEW_S) * math.floor((n - 1) / BUDGET_PER_MINUTE) + boot_s,
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
) -> dict[str, Any]:
    started, finished = watch.started, watch.finished
    elapsed = finished - started
    idle = window_stats(samples, started - IDLE_S, started)
    during = window_stats(samples, started, finished)
    burst = window_stats(samples, started, min(finished, started + 10))
    busiest = timeline.busiest_minute([(r["t_s"], r["do_requests"]) for r in watch.rows])
    result = {
        "orders": n,
        "processes": processes,
        "split": split,
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
        "droplets": stats["droplets"],
        "max_droplets_per_order": stats["max_droplets_per_order_tag"],
        "probe_rate_per_s": PROBE_RATE,
        "probe_samples": len(samples),  # 0: the probe had to be killed (see the log)
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
        "peak_rss_mib": round(watch.peak_rss, 1),
        "sample_interval_s": SAMPLE_S,
        "timeline": watch.rows,
        # From one bucket before the storm: the probe's own first second is not idle latency.
        "probe_p99_timeline": timeline.p99_buckets(
            [s for s in samples if s[0] >= started - P99_BUCKET_S], started, P99_BUCKET_S
        ),
    }
    how = f", {watch.kill['process']} SIGKILLed at {watch.kill['at_s']}s" if watch.kill else ""
    how += ", split: reads only on the probed one" if split else ""
    log(
        f"storm {n} x {processes} process(es){how}: "
        f"{watch.active}/{n} ACTIVE in {elapsed:.1f}s (bounds {bounds}); DO requests "
        f"{stats['requests']} ({result['do_requests_per_droplet']}/droplet), 429s "
        f"{stats['rate_limited']}, busiest minute {busiest['requests']} (<= {busiest['upper']}); "
        f"probe p99 idle {idle['p99_ms']} ms, storm {during['p99_ms']} ms"
    )
    return result
