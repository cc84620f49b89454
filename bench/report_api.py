"""docs/benchmarks.md: the API phase's tables (ours against the ceiling, workers, CPU)."""

from __future__ import annotations

from typing import Any

from bench.api import ENDPOINTS, LABELS
from bench.report_format import num, pct, spread


def api_tables(result: dict[str, Any]) -> list[str]:
    summary = result["summary"]
    cfg = result["config"]
    out = [
        f"Load generator: `{cfg['tool']}` (`-t1`, closed loop), {cfg['duration_s']:g} s per run, "
        f"{cfg['reps']} repetitions, targets alternated on every repetition. Cells: median over "
        "repetitions (min-max in brackets). Ratio = ours / ceiling req/s, the median of the "
        "per-repetition ratios. Errors: non-2xx answers plus socket errors, summed over all runs.",
        "",
        "| endpoint | clients | ours req/s | p50 / p95 / p99 ms | errors | ceiling req/s | "
        "ceiling p99 ms | ours / ceiling |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    by_key = {(r["target"], r["endpoint"], r["connections"]): r for r in summary}
    for endpoint in ENDPOINTS:
        for conns in cfg["connections"]:
            ours = by_key.get(("ours", endpoint, conns))
            ceiling = by_key.get(("ceiling", endpoint, conns))
            if not ours or not ceiling:
                continue
            out.append(
                f"| {LABELS[endpoint]} | {conns} | {num(ours['rps'])} "
                f"({spread(ours['rps_min'], ours['rps_max'])}) | "
                f"{num(ours['p50_ms'], 1)} / {num(ours['p95_ms'], 1)} / "
                f"{num(ours['p99_ms'], 1)} | "
                f"{ours['errors']} | {num(ceiling['rps'])} "
                f"({spread(ceiling['rps_min'], ceiling['rps_max'])}) | "
                f"{num(ceiling['p99_ms'], 1)} | **{pct(ours['ratio'])}** "
                f"({pct(ours['ratio_min'])}-{pct(ours['ratio_max'])}) |"
            )
    workers = cfg.get("workers", 1)
    multi = f"ours-{workers}w"
    if any(r["target"] == multi for r in summary):
        out += [
            "",
            f"With `order-service serve --workers {workers}` (same machine, same runs):",
            "",
            f"| endpoint | clients | {workers} workers req/s | p50 / p95 / p99 ms | errors | "
            f"vs 1 process | vs ceiling (1 process) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for endpoint in ENDPOINTS:
            for conns in cfg["connections"]:
                row = by_key.get((multi, endpoint, conns))
                one = by_key.get(("ours", endpoint, conns))
                if not row or not one:
                    continue
                scale = row["rps"] / one["rps"] if one["rps"] else None
                out.append(
                    f"| {LABELS[endpoint]} | {conns} | {num(row['rps'])} "
                    f"({spread(row['rps_min'], row['rps_max'])}) | "
                    f"{num(row['p50_ms'], 1)} / {num(row['p95_ms'], 1)} / "
                    f"{num(row['p99_ms'], 1)} | {row['errors']} | "
                    f"{'-' if scale is None else f'{scale:.2f}x'} | {pct(row['ratio'])} |"
                )
    out += [
        "",
        "Where the CPU went (median % of one core during the runs; 200% = the whole machine). "
        "PostgreSQL counts only backends that lived through the run.",
        "",
        "| endpoint | clients | target | server | PostgreSQL | catalog mock | wrk |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in summary:
        out.append(
            f"| {row['endpoint']} | {row['connections']} | {row['target']} | "
            f"{num(row['cpu_server'])} | {num(row['cpu_postgres'])} | "
            f"{num(row['cpu_catalog'])} | {num(row['cpu_loadgen'])} |"
        )
    check = result.get("loadgen_check")
    if check:
        out += [
            "",
            f"**The load generator is not the bottleneck.** Against the ceiling's no-op "
            f"handler (`GET /api/v1/health`, 64 clients) the same `wrk -t1` drives "
            f"{num(check['rps'])} req/s using {num(check['cpu_pct'].get('loadgen'))}% of one "
            f"core, while the server saturates at {num(check['cpu_pct'].get('server'))}%: that is "
            "several times the highest rate in the tables above, and during the table's runs wrk "
            "used the small share of a core shown in the CPU table.",
        ]
    logging_runs = (result.get("logging") or {}).get("runs") or []
    if logging_runs:
        warn = [r for r in logging_runs if r["target"] == "ours"]
        info = [r for r in logging_runs if r["target"] == "ours-log-info"]
        if warn and info:
            med = lambda rows, key: sorted(r[key] for r in rows)[len(rows) // 2]  # noqa: E731
            out += [
                "",
                "Log level (GET detail, 16 clients, same process settings otherwise): "
                f"`LOG_LEVEL=WARNING` {num(med(warn, 'rps'))} req/s, p99 "
                f"{num(med(warn, 'p99_ms'), 1)} ms; `LOG_LEVEL=INFO` (one access-log line per "
                f"request to stdout, redirected to a file) {num(med(info, 'rps'))} req/s, p99 "
                f"{num(med(info, 'p99_ms'), 1)} ms.",
            ]
    return out
