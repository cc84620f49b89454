"""docs/benchmarks.md: before/after comparisons, runs with patches, and profiles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.api import ENDPOINTS, LABELS
from bench.report_format import num, pct, run_note
from bench.report_storm import memory_table, storm_table


def full_run_comparison(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Two full `make bench` runs: each ratio is against the ceiling of its own run."""
    old = {(r["target"], r["endpoint"], r["connections"]): r for r in before["summary"]}
    new = {(r["target"], r["endpoint"], r["connections"]): r for r in after["summary"]}
    out = [
        "",
        f"**Full runs, before and after** - before: {run_note(before)}; after: "
        f"{run_note(after)}. Two separate `make bench` runs, so compare the ratios (each "
        "against the ceiling of its own run).",
        "",
        "| endpoint | clients | target | before req/s | p99 ms | / ceiling | after req/s | "
        "p99 ms | / ceiling |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for endpoint in ENDPOINTS:
        for conns in (16, 64):
            for target in ("ours", f"ours-{after['config'].get('workers', 2)}w"):
                b = old.get((target, endpoint, conns))
                a = new.get((target, endpoint, conns))
                if not b or not a:
                    continue
                out.append(
                    f"| {LABELS[endpoint]} | {conns} | {target} | {num(b['rps'])} | "
                    f"{num(b['p99_ms'], 1)} | {pct(b['ratio'])} | {num(a['rps'])} | "
                    f"{num(a['p99_ms'], 1)} | **{pct(a['ratio'])}** |"
                )
    return out


def profile_table(results: Path) -> list[str]:
    """Share of py-spy samples by package (innermost frame), per saved profile."""
    rows: list[tuple[str, str, dict[str, float]]] = []
    for path in sorted(results.glob("profile-*.json")):
        result = json.loads(path.read_text())
        for endpoint, profile in result.get("profiles", {}).items():
            if "by_package" in profile:
                shares = {name: share for name, share in profile["by_package"]}
                rows.append((result["label"], endpoint, shares | {"rps": profile["run"]["rps"]}))
    if not rows:
        return []
    columns = [
        "fastapi",
        "starlette",
        "uvicorn",
        "sqlalchemy",
        "asyncpg",
        "pyjwt",
        "httpcore",
        "anyio",
        "order_service",
        "asyncio",
        "other",
    ]
    out = [
        "",
        "Where the samples fall (py-spy, 250 Hz, innermost frame's package, % of samples; "
        "`python -m bench profile`):",
        "",
        "| profile | endpoint | req/s | " + " | ".join(columns) + " |",
        "| --- | --- | ---: | " + " | ".join("---:" for _ in columns) + " |",
    ]
    for label, endpoint, shares in rows:
        cells = " | ".join(num(shares.get(c, 0.0), 1) for c in columns)
        out.append(f"| {label} | {endpoint} | {num(shares['rps'])} | {cells} |")
    return out


def compare_tables(results: Path) -> list[str]:
    out: list[str] = []
    for path in sorted(results.glob("compare-*.json")):
        result = json.loads(path.read_text())
        label = path.stem.removeprefix("compare-")
        by_key = {(r["target"], r["endpoint"], r["connections"]): r for r in result["summary"]}
        if result.get("before_commit"):
            what = (
                f"before = commit `{result['before_commit']}` (its `src/`), after = commit "
                f"`{result['machine']['git_commit']}`"
            )
        else:
            what = "patches: " + ", ".join(
                f"`{Path(p).as_posix().split('bench/', 1)[-1]}`" for p in result["patches"]
            )
        out += [
            "",
            f"**{label}** - {what}"
            + f" ({result['config']['reps']} reps x {result['config']['duration_s']:g} s, "
            f"{result['machine']['date_utc']}, commit `{result['machine']['git_commit']}`)",
            "",
            "| endpoint | clients | before req/s | p99 ms | after req/s | p99 ms | "
            "after / before | before / ceiling | after / ceiling |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for endpoint in ENDPOINTS:
            for conns in (16, 64):
                before = by_key.get(("before", endpoint, conns))
                after = by_key.get(("after", endpoint, conns))
                if not before or not after:
                    continue
                gain = after["rps"] / before["rps"] if before["rps"] else 0
                out.append(
                    f"| {LABELS[endpoint]} | {conns} | {num(before['rps'])} | "
                    f"{num(before['p99_ms'], 1)} | {num(after['rps'])} | "
                    f"{num(after['p99_ms'], 1)} | {gain:.2f}x | {pct(before['ratio'])} | "
                    f"**{pct(after['ratio'])}** |"
                )
    return out


def patched_runs(results: Path) -> list[str]:
    """storm-*.json / memory-*.json: the same phases run with patches applied."""
    out: list[str] = []
    for path in sorted(results.glob("storm-*.json")):
        result = json.loads(path.read_text())
        label = path.stem.removeprefix("storm-")
        out += [
            "",
            f"Storm with the patches applied (`{label}`, {result['machine']['date_utc']}):",
            "",
        ]
        out += storm_table(result, f" ({label})")[:-2]
    for path in sorted(results.glob("memory-*.json")):
        result = json.loads(path.read_text())
        label = path.stem.removeprefix("memory-")
        out += ["", f"Memory with the patches applied (`{label}`):", ""]
        out += memory_table(result, f" ({label})")
    return out
