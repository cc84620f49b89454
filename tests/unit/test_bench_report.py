"""docs/benchmarks.md as bench/report.py renders it: the current run, in four parts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bench import report
from tests.unit.test_bench_timeline import _storm

REPO = Path(__file__).resolve().parents[2]
PARTS = ["## Method", "## The tables", "## The picture", "## Goals and where they stand"]


def _api_row(target: str, endpoint: str, ratio: float | None, p99: float) -> dict[str, Any]:
    return {
        "target": target,
        "endpoint": endpoint,
        "connections": 16,
        "rps": 100.0,
        "rps_min": 90.0,
        "rps_max": 110.0,
        "p50_ms": 5.0,
        "p95_ms": 9.0,
        "p99_ms": p99,
        "errors": 0,
        "ratio": ratio,
        "ratio_min": ratio,
        "ratio_max": ratio,
        "cpu_server": 90,
        "cpu_postgres": 40,
        "cpu_catalog": 0,
        "cpu_loadgen": 5,
    }


def _results() -> dict[str, Any]:
    summary = []
    for endpoint, ratio, p99 in (("detail", 0.66, 25.0), ("list", 0.8, 55.5), ("create", 0.5, 9)):
        summary += [
            _api_row("ceiling", endpoint, None, 20.0),
            _api_row("ours", endpoint, ratio, p99),
        ]
    machine = {
        "command": "python -m bench",
        "date_utc": "2026-12-07 10:00 UTC",
        "git_commit": "abc",
    }
    return {
        "run": machine | {"seconds": 1200, "seed_seconds": 8, "quick": False},
        "api": {
            "summary": summary,
            "config": {"tool": "wrk", "duration_s": 4, "reps": 3, "connections": [16]},
        },
        "storm": {"storms": [_storm(1)]},
        "memory": {
            "followed": {
                "droplets_followed": 1000,
                "idle": {"median_mib": 100.0},
                "in_flight": {"max_mib": 113.0},
                "growth_mib": 13.0,
                "workers_in_flight": 1000,
                "do_requests_while_following": {"list": 25},
            }
        },
        # webhooks and lifecycle not run
    }


@pytest.fixture
def rendered(tmp_path: Path) -> str:
    results = tmp_path / "results"
    results.mkdir()
    for name, value in _results().items():
        (results / f"{name}.json").write_text(json.dumps(value))
    return report.render(tmp_path / "docs" / "benchmarks.md", results).read_text()


def test_the_page_is_method_tables_picture_goals_in_that_order(rendered: str) -> None:
    positions = [rendered.index(f"\n{part}\n") for part in PARTS]
    assert positions == sorted(positions)
    assert "(../bench/analysis.md)" in rendered
    assert report.METHOD.read_text().strip()[:200] in rendered


def test_the_experiments_stay_in_analysis_md(rendered: str) -> None:
    analysis = (REPO / "bench" / "analysis.md").read_text()
    for paragraph in re.findall(r"^\*\*[^*]+\*\*", analysis, flags=re.M)[:5]:
        assert paragraph not in rendered


def test_goals_say_where_the_run_stands(rendered: str) -> None:
    goals = rendered[rendered.index("## Goals and where they stand") :]
    detail = "| GET order detail >= 50% of the ceiling at 16 clients, one process |"
    assert f"{detail} issue 11 | 66% | met |" in goals
    assert "list 55.5 ms (ceiling 20.0 ms) | **not met** |" in goals
    assert (
        "| probe GET p99 during the storm < 2x idle | issues 5, 11 | 40 x 1: 1.5x | met |" in goals
    )
    assert "| no 429 served by DO | issues 5, 11 | 40 x 1: 1 | **not met** |" in goals
    # Phases that did not run say so.
    assert (
        "| every event of the paid orders delivered | issue 10 | _not measured in this run_ | |"
        in goals
    )
    assert "| a scan at 100,000 orders <= 1.5x one at 10,000 | issue 9 | _not measured" in goals


def test_the_committed_page_has_the_generators_structure() -> None:
    committed = (REPO / "docs" / "benchmarks.md").read_text()
    headings = [line for line in committed.splitlines() if line.startswith("## ")]
    assert headings == PARTS
    assert "(storm.png)" in committed[committed.index("## The picture") :]
