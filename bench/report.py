"""Render docs/benchmarks.md from bench/results/*.json (plus bench/analysis.md, hand-written)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import report_compare
from bench.api import ENDPOINTS, LABELS
from bench.infra import BENCH_DIR, REPO, RESULTS_DIR, log
from bench.report_sections import lifecycle_section, webhooks_section

DOC = REPO / "docs" / "benchmarks.md"
ANALYSIS = BENCH_DIR / "analysis.md"
STORM_PICTURE = "storm.png"  # next to the rendered doc


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS_DIR / f"{name}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _spread(low: float, high: float, digits: int = 0) -> str:
    return f"{_num(low, digits)}-{_num(high, digits)}"


def _machine(facts: dict[str, Any]) -> list[str]:
    dirty = " (src/ had uncommitted changes)" if facts.get("src_modified") else ""
    return [
        f"- Command: `{facts.get('command', 'python -m bench all')}` (`make bench` runs "
        "`python -m bench all`)",
        f"- Date: {facts.get('date_utc')}; git commit `{facts.get('git_commit')}`{dirty}",
        f"- Machine: {facts.get('nproc')} cores ({facts.get('cpu_model')}), "
        f"{facts.get('memory_gib')} GiB, kernel {facts.get('kernel')}",
        f"- Python {facts.get('python')}, PostgreSQL {facts.get('postgresql')} on 127.0.0.1 "
        "(shared with other work on the machine: expect noise)",
    ]


def _api_tables(result: dict[str, Any]) -> list[str]:
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
                f"| {LABELS[endpoint]} | {conns} | {_num(ours['rps'])} "
                f"({_spread(ours['rps_min'], ours['rps_max'])}) | "
                f"{_num(ours['p50_ms'], 1)} / {_num(ours['p95_ms'], 1)} / "
                f"{_num(ours['p99_ms'], 1)} | "
                f"{ours['errors']} | {_num(ceiling['rps'])} "
                f"({_spread(ceiling['rps_min'], ceiling['rps_max'])}) | "
                f"{_num(ceiling['p99_ms'], 1)} | **{_pct(ours['ratio'])}** "
                f"({_pct(ours['ratio_min'])}-{_pct(ours['ratio_max'])}) |"
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
                    f"| {LABELS[endpoint]} | {conns} | {_num(row['rps'])} "
                    f"({_spread(row['rps_min'], row['rps_max'])}) | "
                    f"{_num(row['p50_ms'], 1)} / {_num(row['p95_ms'], 1)} / "
                    f"{_num(row['p99_ms'], 1)} | {row['errors']} | "
                    f"{'-' if scale is None else f'{scale:.2f}x'} | {_pct(row['ratio'])} |"
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
            f"{_num(row['cpu_server'])} | {_num(row['cpu_postgres'])} | "
            f"{_num(row['cpu_catalog'])} | {_num(row['cpu_loadgen'])} |"
        )
    check = result.get("loadgen_check")
    if check:
        out += [
            "",
            f"**The load generator is not the bottleneck.** Against the ceiling's no-op "
            f"handler (`GET /api/v1/health`, 64 clients) the same `wrk -t1` drives "
            f"{_num(check['rps'])} req/s using {_num(check['cpu_pct'].get('loadgen'))}% of one "
            f"core, while the server saturates at {_num(check['cpu_pct'].get('server'))}%: that is "
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
                f"`LOG_LEVEL=WARNING` {_num(med(warn, 'rps'))} req/s, p99 "
                f"{_num(med(warn, 'p99_ms'), 1)} ms; `LOG_LEVEL=INFO` (one access-log line per "
                f"request to stdout, redirected to a file) {_num(med(info, 'rps'))} req/s, p99 "
                f"{_num(med(info, 'p99_ms'), 1)} ms.",
            ]
    return out


def _storm_table(result: dict[str, Any], label: str = "") -> list[str]:
    out = [
        "| orders paid at once | processes | all ACTIVE after | lower bound: our budget "
        "225/min | lower bound: DO 250/min | DO requests / droplet | 429s | busiest rolling "
        "minute (goal <= 250) | droplets / order | GET detail p99 idle -> storm (first 10 s) | "
        "x idle |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for storm in result["storms"]:
        bound = storm["lower_bound"]
        out.append(
            f"| {storm['orders']}{label} | {_processes(storm)} | "
            f"{storm['seconds_to_all_active']:.1f} s"
            f"{'' if storm['all_active'] else ' (NOT all: ' + str(storm['active']) + ')'} | "
            f"{bound['our_budget_s']:.0f} s (**{storm['vs_budget_bound']:.2f}x**) | "
            f"{bound['do_limit_s']:.0f} s ({storm['vs_do_bound']:.2f}x) | "
            f"{storm['do_requests_per_droplet']:.2f} ({storm['do_requests']}: "
            f"{_routes(storm['do_requests_by_route'])}) | **{storm['rate_limited_429']}** | "
            f"{_busiest(storm)} | {storm['max_droplets_per_order']} | "
            f"{storm['probe_idle']['p99_ms']:.1f} -> "
            f"{storm['probe_storm']['p99_ms']:.1f} ms ({storm['probe_first_10s']['p99_ms']:.1f}) | "
            f"**{_times(storm['p99_storm_vs_idle'])}** "
            f"({_times(storm['p99_first_10s_vs_idle'])}) |"
        )
    first = result["storms"][0]
    out += [
        "",
        f"Fake DigitalOcean: {first['boot_s']:g} s boot, 250 requests/min and 5,000/h per token "
        f"(429 past them); service: `order-service serve` processes on one database (the "
        "processes column), each with `PROVISIONING_POLL_INTERVAL_MS="
        f"{first['poll_interval_ms']}`, `PROVISIONING_MAX_ATTEMPTS={first.get('max_attempts', 60)}`"
        " (the default 300 s deadline) and the default rate budget (225/min). The orders exist "
        "before; the clock starts when the harness sends all payments at once (100 connections "
        "in all, spread round-robin over the processes). The probe is an open-loop GET order "
        f"detail at {first['probe_rate_per_s']:g} req/s to the first process, from its own "
        "process, 6 s idle right before the storm, then until every order is ACTIVE. A SIGKILLed "
        "process is the last one, killed once every payment was answered. In a split storm the "
        "probed process serves reads only (`PROVISIONING_ENABLED=false`, `LIFECYCLE_ENABLED="
        "false`, no payments sent to it) and the other takes every payment and runs the duties, "
        'as docs/operations.md\'s "Reads during a storm" deploys it. The busiest rolling '
        "minute is the most requests the fake counted (429s included) between two samples of its "
        "counter at most 60 s apart (sampled every "
        f"{first.get('sample_interval_s', 0.25):g} s; in brackets the most any 60 s window can "
        "hold given the gaps between samples). Payments: "
        + "; ".join(
            f"{s['orders']} x {_processes(s)}: {s['payments']['ok']} ok, "
            f"{s['payments']['errors']} errors, all answered in {s['payments']['seconds']} s "
            f"(p99 {s['payments']['p99_ms']} ms)"
            for s in result["storms"]
        )
        + ".",
    ]
    return out


def _times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio}x"


def _processes(storm: dict[str, Any]) -> str:
    if storm.get("split"):
        return f"{storm['processes']}, split: reads on the probed one"
    text = str(storm.get("processes", 1))
    kill = storm.get("kill")
    return text + (f" (one SIGKILLed at {kill['at_s']:.0f} s)" if kill else "")


def _busiest(storm: dict[str, Any]) -> str:
    busiest = storm.get("busiest_minute")
    if not busiest:
        return "-"
    return f"**{busiest['requests']}** ({busiest['upper']})"


def _storm_picture(result: dict[str, Any], doc: Path) -> list[str]:
    """docs/storm.png, drawn from the same results (needs the `bench` extra's matplotlib)."""
    from bench.plot import draw_storms

    picture = draw_storms(result["storms"], doc.parent / STORM_PICTURE)
    if picture is None:
        return []
    return [
        "",
        f"![The largest storm over time: orders ACTIVE against the budget's lower bound, DO "
        f"requests per rolling minute, probe p99 per 5 s]({STORM_PICTURE})",
        "",
        f"[`docs/{STORM_PICTURE}`]({STORM_PICTURE}): the largest storm of the run, with each "
        "process count, on one time axis. Top: orders ACTIVE against the staircase of our "
        "budget's lower bound. Middle: DO requests in the 60 s before each sample (x: samples "
        "where the fake answered 429s). Bottom: the probe's GET p99 per 5 s (log scale), the "
        "dotted lines at 2x each run's idle p99.",
    ]


def _routes(by_route: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in by_route.items() if v)


def _memory_table(result: dict[str, Any], label: str = "", header: bool = True) -> list[str]:
    out = (
        [
            "| scenario | idle RSS | RSS in flight | growth | what was in flight |",
            "| --- | ---: | ---: | ---: | --- |",
        ]
        if header
        else []
    )
    followed = result.get("followed")
    if followed:
        requests = _routes(followed["do_requests_while_following"])
        out.append(
            f"| A. {followed['droplets_followed']:,} droplets in flight, followed{label} | "
            f"{followed['idle']['median_mib']:.1f} MiB | "
            f"{followed['in_flight']['max_mib']:.1f} MiB | "
            f"**{followed['growth_mib']:+.1f} MiB** | "
            f"{int(followed['workers_in_flight']):,} workers "
            f"(gauge), every droplet `new` (600 s boot) and polled; DO requests meanwhile: "
            f"{requests} |"
        )
    paid = result.get("paid_at_once")
    if paid:
        out.append(
            f"| B. 1,000 orders paid at once via the API | {paid['idle']['median_mib']:.1f} MiB | "
            f"{paid['in_flight']['max_mib']:.1f} MiB | **{paid['growth_mib']:+.1f} MiB** | "
            f"{int(paid['workers_in_flight']):,} workers; {paid['droplets_created']} droplets "
            "created (rate budget), the rest waiting for budget |"
        )
    return out


def _baseline(name: str) -> dict[str, Any] | None:
    path = RESULTS_DIR / "baseline" / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _baseline_note(result: dict[str, Any]) -> str:
    facts = result.get("machine", {})
    return f"commit `{facts.get('git_commit')}`, {facts.get('date_utc')}"


def _patched_runs() -> list[str]:
    """storm-*.json / memory-*.json: the same phases run with patches applied."""
    out: list[str] = []
    for path in sorted(RESULTS_DIR.glob("storm-*.json")):
        result = json.loads(path.read_text())
        label = path.stem.removeprefix("storm-")
        out += [
            "",
            f"Storm with the patches applied (`{label}`, {result['machine']['date_utc']}):",
            "",
        ]
        out += _storm_table(result, f" ({label})")[:-2]
    for path in sorted(RESULTS_DIR.glob("memory-*.json")):
        result = json.loads(path.read_text())
        label = path.stem.removeprefix("memory-")
        out += ["", f"Memory with the patches applied (`{label}`):", ""]
        out += _memory_table(result, f" ({label})")
    return out


def render(doc: Path = DOC) -> Path:
    run = _load("run") or {}
    api_result = _load("api")
    storm = _load("storm")
    memory = _load("memory")
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`python -m bench all`) from `bench/results/*.json`; the text "
        "between the tables comes from `bench/analysis.md`. Re-render without measuring: "
        "`python -m bench render`.",
        "",
        "## How to run",
        "",
        "```sh",
        "make bench                                   # everything, ~25 minutes on 2 cores",
        "make bench BENCH_ARGS=--quick                # smoke test: 1 repetition, 3 s runs",
        ".venv/bin/python -m bench api   # one phase: api|storm|memory|webhooks|lifecycle",
        ".venv/bin/python -m bench compare --patch my-change.diff --label NAME   # before/after",
        ".venv/bin/python -m bench compare --before-commit fd93a92 --label NAME  # old vs tree",
        ".venv/bin/python -m bench storm --storm-kill-after 20   # + 3 processes, one SIGKILLed",
        ".venv/bin/pip install -c constraints.txt -e '.[bench]'   # py-spy (profile), matplotlib",
        ".venv/bin/python -m bench profile --endpoints detail,pay [--patch ...]",
        "```",
        "",
        "Needs PostgreSQL on 127.0.0.1:5432 (user `postgres`, trust auth; `BENCH_PG_*` to change)."
        " The harness drops and re-creates its own database `order_service_bench` on every run and"
        " never touches another. `wrk` is used when installed; the harness installs it with "
        "`apt-get` when it can, else falls back to an httpx driver (and says so in the tables).",
        "",
        "## The run",
        "",
    ]
    facts = run or (api_result or {}).get("machine") or {}
    lines += _machine(facts)
    if run:
        lines.append(
            f"- Whole run: {run.get('seconds', 0):.0f} s (seeding {run.get('seed_seconds')} s)"
            + (" — **quick mode**" if run.get("quick") else "")
        )
    analysis = ANALYSIS.read_text() if ANALYSIS.exists() else ""
    sections = _split_analysis(analysis)
    lines += ["", sections.get("method", "").strip(), ""]
    lines += ["## 1-2. API throughput and latency against the ceiling", ""]
    if api_result:
        lines += _api_tables(api_result)
    else:
        lines.append("_not measured in this run_")
    lines += ["", sections.get("api", "").strip(), ""]
    lines += ["## 3. Provisioning storm", ""]
    lines += _storm_table(storm) if storm else ["_not measured in this run_"]
    if storm:
        lines += _storm_picture(storm, doc)
    old_storm = _baseline("storm")
    if old_storm:
        lines += ["", f"Before the fixes ({_baseline_note(old_storm)}, same harness):", ""]
        lines += _storm_table(old_storm, " (before)")[:-2]
    lines += ["", sections.get("storm", "").strip(), ""]
    lines += ["## 4. Memory", ""]
    lines += _memory_table(memory) if memory else ["_not measured in this run_"]
    old_memory = _baseline("memory")
    if old_memory:
        lines += _memory_table(old_memory, f" (before: {_baseline_note(old_memory)})", header=False)
    lines += ["", sections.get("memory", "").strip(), ""]
    lines += ["## 5. Profile, fixes and before/after", ""]
    lines += [sections.get("profile", "").strip()]
    lines += report_compare.profile_table()
    lines += ["", sections.get("compare", "").strip()]
    lines += report_compare.compare_tables()
    old_api = _baseline("api")
    if old_api and api_result:
        lines += report_compare.full_run_comparison(old_api, api_result)
    lines += _patched_runs()
    lines += ["", sections.get("remaining", "").strip(), ""]
    lines += ["## 6. Webhooks: delivery storm and a dead endpoint", ""]
    lines += webhooks_section(_load("webhooks"))
    lines += ["", sections.get("webhooks", "").strip(), ""]
    lines += ["## 7. Lifecycle scan: cost against the number of orders", ""]
    lines += lifecycle_section(_load("lifecycle"))
    lines += ["", sections.get("lifecycle", "").strip(), ""]
    doc.parent.mkdir(exist_ok=True)
    text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    doc.write_text(text.rstrip() + "\n")
    log(f"wrote {doc}")
    return doc


def _split_analysis(text: str) -> dict[str, str]:
    """bench/analysis.md is split on lines `<!-- section: NAME -->`."""
    sections: dict[str, str] = {}
    current = "method"
    for line in text.splitlines():
        if line.startswith("<!-- section:"):
            current = line.removeprefix("<!-- section:").removesuffix("-->").strip()
            continue
        sections[current] = sections.get(current, "") + line + "\n"
    return sections
