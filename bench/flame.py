"""Summaries of py-spy's collapsed stacks (`py-spy record -f raw`): where the time goes.

`python -m bench.flame FILE [--top N] [--filter TEXT]` prints the functions with
the most samples as the innermost frame (self) and anywhere on the stack
(inclusive), as a share of all samples.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def _short(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "src/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


def summarize(path: Path, top: int = 25) -> dict[str, list[tuple[str, float]]]:
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";") if f]
        # The first frame is the thread name (py-spy --threads off still names it).
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        total += count
        if frames:
            self_time[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    return {
        "by_package": by_package(path),
        "self": [(f, round(100 * c / total, 1)) for f, c in self_time.most_common(top)],
        "inclusive": [(f, round(100 * c / total, 1)) for f, c in inclusive.most_common(top)],
        "samples": [("total", float(total))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.flame")
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    result = summarize(args.file, args.top)
    print(f"samples: {int(result['samples'][0][1])}")
    for kind in ("by_package", "self", "inclusive"):
        print(f"\n--- {kind} (% of samples)")
        for frame, share in result[kind]:
            print(f"{share:6.1f}  {frame}")


def by_package(path: Path) -> list[tuple[str, float]]:
    """Self samples grouped by the package of the innermost frame."""
    groups: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        total += count
        leaf = stack.split(";")[-1]
        match = _FRAME.match(leaf.strip())
        where = "/" + (match["file"] if match else leaf)
        package = "other"
        for marker, name in (
            ("/fastapi/", "fastapi"),
            ("/starlette/", "starlette"),
            ("/sqlalchemy/", "sqlalchemy"),
            ("/asyncpg/", "asyncpg"),
            ("/jwt/", "pyjwt"),
            ("/uvicorn/", "uvicorn"),
            ("/order_service/", "order_service"),
            ("/prometheus_client/", "prometheus_client"),
            ("/pydantic", "pydantic"),
            ("/jsonresponse.py", "order_service"),
            ("/httpx/", "httpx"),
            ("/httpcore/", "httpcore"),
            ("/anyio/", "anyio"),
            ("/orjson", "orjson"),
            ("/logging/", "logging"),
            ("/asyncio/", "asyncio"),
            ("/greenlet", "greenlet"),
            ("/contextlib", "contextlib"),
            ("/uuid", "uuid"),
        ):
            if marker in where:
                package = name
                break
        groups[package] += count
    return [(k, round(100 * v / total, 1)) for k, v in groups.most_common()]


if __name__ == "__main__":
    main()
