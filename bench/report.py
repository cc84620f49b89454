"""Render docs/benchmarks.md from bench/results/*.json: the current run, nothing else.

The page has four parts, in this order: the method (how to run, the run's
machine, and bench/method.md), the tables of every phase, the storm's
picture, and the goals with where this run leaves them. The experiments
behind the figures, and their history, are bench/analysis.md (hand-written,
linked, never rendered into the page).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import report_compare
from bench.infra import BENCH_DIR, REPO, RESULTS_DIR, log
from bench.report_api import api_tables
from bench.report_format import load, run_note
from bench.report_goals import goals_section
from bench.report_placement import placement_section
from bench.report_sections import lifecycle_section, webhooks_section
from bench.report_storm import memory_table, storm_picture, storm_table

DOC = REPO / "docs" / "benchmarks.md"
METHOD = BENCH_DIR / "method.md"
ANALYSIS_LINK = "../bench/analysis.md"
NOT_MEASURED = "_not measured in this run_"

HOW_TO_RUN = [
    "```sh",
    "make bench                                   # everything, ~25 minutes on 2 cores",
    "make bench BENCH_ARGS=--quick                # smoke test: 1 repetition, 3 s runs",
    ".venv/bin/python -m bench api   # one phase: api|storm|placement|memory|webhooks|lifecycle",
    ".venv/bin/python -m bench render             # this page again from bench/results/",
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
]


def _machine(facts: dict[str, Any], run: dict[str, Any]) -> list[str]:
    dirty = " (src/ had uncommitted changes)" if facts.get("src_modified") else ""
    out = [
        f"- Command: `{facts.get('command', 'python -m bench all')}` (`make bench` runs "
        "`python -m bench all`)",
        f"- Date: {facts.get('date_utc')}; git commit `{facts.get('git_commit')}`{dirty}",
        f"- Machine: {facts.get('nproc')} cores ({facts.get('cpu_model')}), "
        f"{facts.get('memory_gib')} GiB, kernel {facts.get('kernel')}",
        f"- Python {facts.get('python')}, PostgreSQL {facts.get('postgresql')} on 127.0.0.1 "
        "(shared with other work on the machine: expect noise)",
    ]
    if run:
        out.append(
            f"- Whole run: {run.get('seconds', 0):.0f} s (seeding {run.get('seed_seconds')} s)"
            + (" — **quick mode**" if run.get("quick") else "")
        )
    return out


def _method(results: Path) -> list[str]:
    run = load(results, "run") or {}
    facts = run or (load(results, "api") or {}).get("machine") or {}
    method = METHOD.read_text().strip() if METHOD.exists() else ""
    return [
        "## Method",
        "",
        "### How to run",
        "",
        *HOW_TO_RUN,
        "",
        "### The run",
        "",
        *_machine(facts, run),
        "",
        "### How it measures",
        "",
        method,
    ]


def _tables(results: Path, found: dict[str, dict[str, Any] | None]) -> list[str]:
    api, storm, memory = found["api"], found["storm"], found["memory"]
    lines = ["## The tables", "", "### API throughput and latency against the ceiling", ""]
    lines += api_tables(api) if api else [NOT_MEASURED]
    lines += ["", "### Provisioning storm", ""]
    lines += storm_table(storm) if storm else [NOT_MEASURED]
    old_storm = load(results / "baseline", "storm")
    if old_storm:
        lines += ["", f"Before the fixes ({run_note(old_storm)}, same harness):", ""]
        lines += storm_table(old_storm, " (before)")[:-2]
    lines += ["", "### The cost of placement: 1 vs 10 DO accounts", ""]
    lines += placement_section(found["placement"])
    lines += ["", "### Memory", ""]
    lines += memory_table(memory) if memory else [NOT_MEASURED]
    old_memory = load(results / "baseline", "memory")
    if old_memory:
        lines += memory_table(old_memory, f" (before: {run_note(old_memory)})", header=False)
    lines += ["", "### Webhooks: delivery storm and a dead endpoint", ""]
    lines += webhooks_section(found["webhooks"])
    lines += ["", "### Lifecycle scan: cost against the number of orders", ""]
    lines += lifecycle_section(found["lifecycle"])
    extra = report_compare.profile_table(results) + report_compare.compare_tables(results)
    old_api = load(results / "baseline", "api")
    if old_api and api:
        extra += report_compare.full_run_comparison(old_api, api)
    extra += report_compare.patched_runs(results)
    if extra:
        lines += ["", "### Profiles and before/after comparisons", *extra]
    return lines


def _picture(storm: dict[str, Any] | None, doc: Path) -> list[str]:
    picture = storm_picture(storm, doc) if storm else []
    missing = (
        "_no picture in this run_ (the storm phase draws it with the `bench` extra's matplotlib)"
    )
    return ["## The picture", "", *(picture or [missing])]


def render(doc: Path = DOC, results: Path = RESULTS_DIR) -> Path:
    found = {
        name: load(results, name)
        for name in ("api", "storm", "placement", "memory", "webhooks", "lifecycle")
    }
    lines = [
        "# Benchmarks",
        "",
        "The current run, generated by `make bench` (`python -m bench all`) from "
        "`bench/results/*.json`; `python -m bench render` writes it again without measuring. "
        "In order: the method, the tables, the picture, and the goals with where this run "
        f"stands. What the figures rest on — the experiments, the fixes, what was tried and "
        f"not adopted, and the earlier runs — is in [bench/analysis.md]({ANALYSIS_LINK}).",
        "",
        *_method(results),
        "",
        *_tables(results, found),
        "",
        *_picture(found["storm"], doc),
        "",
        "## Goals and where they stand",
        "",
        *goals_section(found),
        "",
        "Why each figure is where it is, what was tried, and what limits it now: "
        f"[bench/analysis.md]({ANALYSIS_LINK}), in particular "
        f"[what remains the bottleneck]({ANALYSIS_LINK}#what-remains-the-bottleneck).",
    ]
    doc.parent.mkdir(exist_ok=True)
    text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    doc.write_text(text.rstrip() + "\n")
    log(f"wrote {doc}")
    return doc
