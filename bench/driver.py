"""Fallback load generator when wrk is missing: closed loop, fixed concurrency, httpx.

It prints the same `BENCH_JSON {...}` line as bench/lua/report.lua. It costs far
more CPU per request than wrk, so on a small machine it competes with the
server: its numbers are a floor, not comparable with wrk's (the report says
which tool ran).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

import httpx


async def _main(
    url: str, connections: int, duration: float, spec: dict[str, Any], ids: list[str]
) -> None:
    latencies: list[float] = []
    errors = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}
    counter = iter(range(10**9))
    deadline = time.monotonic() + duration
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = dict(spec.get("headers") or {})
    if spec.get("body"):
        headers.setdefault("Content-Type", "application/json")

    def path() -> str:
        if not ids:
            return spec["path"]
        if spec.get("sequential_ids"):
            chosen = ids[min(next(counter), len(ids) - 1)]
        else:
            chosen = random.choice(ids)
        return spec["id_path"].format(id=chosen)

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client:

        async def worker() -> None:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    answer = await client.request(
                        spec.get("method", "GET"), path(), headers=headers, content=spec.get("body")
                    )
                except httpx.TimeoutException:
                    errors["timeout"] += 1
                    continue
                except httpx.HTTPError:
                    errors["connect"] += 1
                    continue
                latencies.append(time.perf_counter() - started)
                if answer.status_code >= 400:
                    errors["status"] += 1

        began = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.monotonic() - began
    latencies.sort()

    def pct(p: float) -> int:
        if not latencies:
            return 0
        return int(latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] * 1e6)

    report = {
        "requests": len(latencies),
        "duration_us": int(elapsed * 1e6),
        "bytes": 0,
        "errors": errors,
        "latency_us": {
            "mean": statistics.fmean(latencies) * 1e6 if latencies else 0,
            "stdev": statistics.pstdev(latencies) * 1e6 if latencies else 0,
            "max": int(latencies[-1] * 1e6) if latencies else 0,
            "p50": pct(50),
            "p90": pct(90),
            "p95": pct(95),
            "p99": pct(99),
            "p999": pct(99.9),
        },
    }
    print("BENCH_JSON " + json.dumps(report), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.driver")
    parser.add_argument("--url", required=True)
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--spec", required=True, help="bench.load.Load as JSON")
    args = parser.parse_args()
    spec = json.loads(args.spec)
    ids: list[str] = []
    if spec.get("ids_file"):
        lines = Path(spec["ids_file"]).read_text().splitlines()
        ids = [line.strip() for line in lines if line.strip()][spec.get("skip", 0) :]
    asyncio.run(_main(args.url, args.connections, args.duration, spec, ids))


if __name__ == "__main__":
    main()
