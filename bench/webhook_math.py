"""The webhooks benchmark's arithmetic: feed events against arrivals, rates, the p99 ratio."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from bench.timeline import percentile


def parse_time(text: str) -> float:
    """An event's `createdAt` (ISO 8601 with Z) as epoch seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def match_arrivals(
    events: Iterable[Mapping[str, Any]], arrivals: Mapping[str, list[float]]
) -> dict[str, Any]:
    """Every feed event against the sink's arrivals (webhook-id = event id).

    Returns the ids that never arrived, how many arrived more than once,
    arrivals that match no event (not of these orders, or a ping), and the
    latency of each delivered event's first arrival, in ms.
    """
    events = list(events)
    ids = {e["id"] for e in events}
    missing = sorted(e["id"] for e in events if not arrivals.get(e["id"]))
    latencies = [
        (min(arrivals[e["id"]]) - parse_time(e["createdAt"])) * 1000
        for e in events
        if arrivals.get(e["id"])
    ]
    firsts = [min(arrivals[i]) for i in ids if arrivals.get(i)]
    return {
        "events": len(events),
        "delivered": len(events) - len(missing),
        "missing": missing,
        "duplicates": sum(1 for i in ids if len(arrivals.get(i, ())) > 1),
        "unexpected": sum(1 for i in arrivals if i not in ids),
        "latencies_ms": latencies,
        "first_arrival": min(firsts) if firsts else None,
        "last_arrival": max(firsts) if firsts else None,
        "by_type": dict(Counter(e["type"] for e in events)),
    }


def delivery_summary(matched: Mapping[str, Any], started: float) -> dict[str, Any]:
    """Rates and percentiles; `started`: when the payments were sent (epoch)."""
    latencies = matched["latencies_ms"]
    last = matched["last_arrival"]
    span = (last - started) if last is not None else 0.0
    return {
        "events": matched["events"],
        "delivered": matched["delivered"],
        "all_delivered": not matched["missing"] and matched["events"] > 0,
        "missing": len(matched["missing"]),
        "missing_ids": matched["missing"][:20],
        "duplicates": matched["duplicates"],
        "unexpected": matched["unexpected"],
        "by_type": matched["by_type"],
        "seconds_to_last": round(span, 2),
        "deliveries_per_s": round(matched["delivered"] / span, 1) if span > 0 else None,
        "latency_p50_ms": percentile(latencies, 50),
        "latency_p99_ms": percentile(latencies, 99),
        "latency_max_ms": round(max(latencies), 1) if latencies else 0.0,
    }


def p99_ratio(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Dead-endpoint runs against no-endpoint runs: per repetition and of the medians."""
    none = {r["rep"]: r["probe"]["p99_ms"] for r in runs if r["setup"] == "none"}
    dead = {r["rep"]: r["probe"]["p99_ms"] for r in runs if r["setup"] == "dead"}
    per_rep = [round(dead[k] / none[k], 2) for k in sorted(none) if k in dead and none[k]]
    none_med = statistics.median(none.values()) if none else 0.0
    dead_med = statistics.median(dead.values()) if dead else 0.0
    return {
        "none_p99_ms": round(none_med, 2),
        "dead_p99_ms": round(dead_med, 2),
        "ratio": round(dead_med / none_med, 2) if none_med else None,
        "per_rep": per_rep,
    }
