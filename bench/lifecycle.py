"""Phase `lifecycle` (issue 9): `bench/lifecycle_scan.py`'s scan cost at each size,
then `bench/lifecycle_drain.py`'s backlog of due suspensions.

The measurement is `bench.lifecycle_scan.measure(size)` (its own database,
`order_service_bench_lifecycle`, dropped and created for each size); this
module only runs it for the sizes of `python -m bench`, drops that database
at the end and adds the ratios the goal is stated in (largest size over
smallest: must stay <= 1.5x, the scan's cost following the due rows, not the
total).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench import lifecycle_drain, lifecycle_scan
from bench.infra import log

SIZES = (10_000, 100_000)
QUICK_SIZES = (500, 2_000)
DRAIN = (10_000, 180.0)  # due suspensions, seconds watched
QUICK_DRAIN = (1_000, 75.0)
GOAL_RATIO = 1.5


def ratios(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Largest size over smallest, for each cost the scan module reports."""
    if len(results) < 2:
        return {}
    small, large = min(results, key=lambda r: r["orders"]), max(results, key=lambda r: r["orders"])
    out: dict[str, Any] = {"small": small["orders"], "large": large["orders"]}
    for key in (
        "idle_scan_ms",
        "due_scan_s",
        "rows_touched",
        "idle_rows_touched",
        "renewal_scan_s",
        "renewal_rows_touched",
    ):
        if small.get(key) and large.get(key) is not None:
            out[key] = round(large[key] / small[key], 2)
    return out


async def _measure_all(sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    results = []
    try:
        for size in sizes:
            started = time.monotonic()
            log(f"lifecycle: {size:,} ACTIVE orders")
            result = await lifecycle_scan.measure(size)
            result["phase_seconds"] = round(time.monotonic() - started, 1)
            log(
                f"lifecycle {size:,}: idle scan {result['idle_scan_ms']} ms, "
                f"{result['due']} due in {result['due_scan_s']} s"
            )
            results.append(result)
    finally:
        # What lifecycle_scan.main does after its sizes: its database is not left behind.
        await lifecycle_scan.drop_database(lifecycle_scan.NAME)
    return results


def run_lifecycle(
    sizes: tuple[int, ...], *, drain_due: int, drain_window_s: float
) -> dict[str, Any]:
    results = asyncio.run(_measure_all(sizes))
    log(f"lifecycle: backlog of {drain_due:,} due suspensions for {drain_window_s:g} s")
    drain = lifecycle_drain.run_drain(drain_due, drain_window_s)
    return {
        "drain": drain,
        "sizes": list(sizes),
        "due": lifecycle_scan.DUE,
        "results": results,
        "ratios": ratios(results),
        "goal_ratio": GOAL_RATIO,
    }
