"""Arithmetic on a storm's timeline: rolling DO minute, p99 over time, the budget's staircase.

The storm samples the fake DigitalOcean's cumulative request counter every
~0.25 s (`bench/storm.py`), so counts "in a 60 s window" are known only between
samples. `busiest_minute` therefore gives two numbers: what two samples at most
60 s apart prove (a lower estimate of the true busiest minute) and the count
over the widest gap any 60 s window can fall into (an upper estimate). The goal
(<= 250, DO's limit) is met for sure when the upper estimate meets it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

WINDOW_S = 60.0


def busiest_minute(points: Sequence[tuple[float, int]]) -> dict[str, Any]:
    """points: (seconds, cumulative requests), in time order; the first is the baseline."""
    if len(points) < 2:
        return {"requests": 0, "upper": 0, "ending_at_s": None, "max_gap_s": 0.0}
    times = [t for t, _ in points]
    counts = [c for _, c in points]
    max_gap = max(b - a for a, b in itertools.pairwise(times))
    best = best_upper = 0
    best_at: float | None = None
    low = low_upper = 0
    for j, t in enumerate(times):
        # Earliest sample at most 60 s before t: the requests between them fell in <= 60 s.
        while t - times[low] > WINDOW_S:
            low += 1
        # Any 60 s window lies between two samples at most 60 s + two gaps apart.
        while t - times[low_upper] > WINDOW_S + 2 * max_gap:
            low_upper += 1
        if counts[j] - counts[low] > best:
            best, best_at = counts[j] - counts[low], t
        best_upper = max(best_upper, counts[j] - counts[low_upper])
    return {
        "requests": best,
        "upper": best_upper,
        "ending_at_s": best_at,
        "max_gap_s": round(max_gap, 3),
    }


def rolling_minute(points: Sequence[tuple[float, int]]) -> list[tuple[float, int]]:
    """Requests in the 60 s before each sample (before the first sample: none were sent)."""
    series: list[tuple[float, int]] = []
    low = 0
    for t, count in points:
        while low + 1 < len(points) and points[low + 1][0] <= t - WINDOW_S:
            low += 1
        base = points[low][1] if points[low][0] <= t - WINDOW_S else points[0][1]
        series.append((t, count - base))
    return series


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))], 2)


def p99_buckets(
    samples: Sequence[Sequence[float]], started: float, bucket_s: float = 5.0
) -> list[dict[str, Any]]:
    """The probe's samples ([epoch_sent, latency_ms, status]) in buckets of `bucket_s`,
    relative to `started` (negative: the idle seconds before the storm)."""
    buckets: dict[int, list[Sequence[float]]] = {}
    for sample in samples:
        buckets.setdefault(math.floor((sample[0] - started) / bucket_s), []).append(sample)
    return [
        {
            "t_s": index * bucket_s,
            "requests": len(rows),
            "errors": sum(1 for r in rows if r[2] != 200),
            "p50_ms": percentile([r[1] for r in rows], 50),
            "p99_ms": percentile([r[1] for r in rows], 99),
        }
        for index, rows in sorted(buckets.items())
    ]


def budget_staircase(
    n: int, boot_s: float, per_window: int, window_s: float, until_s: float
) -> list[tuple[float, int]]:
    """Most orders that can be ACTIVE at each time: `per_window` creates every
    `window_s`, each droplet ACTIVE `boot_s` after its create (step points)."""
    points: list[tuple[float, int]] = [(0.0, 0)]
    k = 0
    while k * per_window < n:
        at = k * window_s + boot_s
        if at > until_s and k:
            break
        points.append((at, points[-1][1]))
        points.append((at, min(n, (k + 1) * per_window)))
        k += 1
    points.append((max(until_s, points[-1][0]), points[-1][1]))
    return points
