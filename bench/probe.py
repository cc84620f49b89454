"""Open-loop latency probe: GET order detail at a fixed rate, from its own process.

`python -m bench.probe --url U --token T --ids FILE --rate 50 --max-seconds 600 --out F`
sends one request every 1/rate s whatever the answers do (so a stalled server
shows up as latency, not as fewer samples) until SIGTERM/SIGINT or the time
limit, then writes one JSON list of [epoch_sent, latency_ms, status] to F.
Light load by design: it measures what a user sees while something else runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import time
from pathlib import Path

import httpx


async def _probe(args: argparse.Namespace, ids: list[str]) -> list[list[float]]:
    samples: list[list[float]] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    headers = {"Authorization": f"Bearer {args.token}"}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    pending: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(base_url=args.url, headers=headers, limits=limits) as client:

        async def one(order_id: str) -> None:
            sent = time.time()
            began = time.perf_counter()
            try:
                answer = await client.get(f"/api/v1/orders/{order_id}", timeout=30)
                status = answer.status_code
            except httpx.HTTPError:
                status = 0
            except asyncio.CancelledError:
                # Still unanswered when the probe stopped: an error, with the time it had
                # waited so far (a lower bound of its latency).
                samples.append([sent, (time.perf_counter() - began) * 1000, 0])
                raise
            samples.append([sent, (time.perf_counter() - began) * 1000, status])

        interval = 1 / args.rate
        deadline = time.monotonic() + args.max_seconds
        next_at = time.monotonic()
        while not stop.is_set() and time.monotonic() < deadline:
            task = asyncio.create_task(one(random.choice(ids)))
            pending.add(task)
            task.add_done_callback(pending.discard)
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
        if pending:
            # A stalled server must not keep the probe (and the harness waiting for its
            # samples) for long: what is still unanswered after 10 s is cancelled.
            _, late = await asyncio.wait(pending, timeout=5)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.probe")
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--ids", required=True, type=Path)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--max-seconds", type=float, default=600)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    ids = [line.strip() for line in args.ids.read_text().splitlines() if line.strip()]
    samples = asyncio.run(_probe(args, ids))
    args.out.write_text(json.dumps(samples))


if __name__ == "__main__":
    main()
