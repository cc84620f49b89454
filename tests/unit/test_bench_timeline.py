"""The storm benchmark's arithmetic (bench/timeline.py) and its storm plan (bench/prepare.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bench import timeline
from bench.prepare import StormRun, storm_plan


def test_busiest_minute_counts_requests_between_samples_at_most_60s_apart() -> None:
    # 4 requests per second for 100 s, sampled every 0.5 s.
    points = [(k * 0.5, int(k * 0.5 * 4)) for k in range(201)]
    busiest = timeline.busiest_minute(points)
    assert busiest["requests"] == 240
    assert busiest["max_gap_s"] == 0.5
    # The widest window between samples is 61 s: 4 more requests at most.
    assert busiest["upper"] == 244


def test_busiest_minute_finds_a_burst_and_when_it_ended() -> None:
    points = [(0.0, 0), (10.0, 0), (11.0, 300), (80.0, 310), (150.0, 320)]
    busiest = timeline.busiest_minute(points)
    assert busiest["requests"] == 300
    assert busiest["ending_at_s"] == 11.0


def test_busiest_minute_of_a_single_sample_is_zero() -> None:
    assert timeline.busiest_minute([(0.0, 5)])["requests"] == 0


def test_rolling_minute_subtracts_the_count_60s_earlier() -> None:
    points = [(0.0, 0), (30.0, 100), (60.0, 150), (90.0, 160), (125.0, 170)]
    assert timeline.rolling_minute(points) == [
        (0.0, 0),
        (30.0, 100),
        (60.0, 150),  # the baseline sample is exactly 60 s before
        (90.0, 60),
        (125.0, 20),  # latest sample at or before 65 s is the one at 60 s
    ]


def test_p99_buckets_group_by_time_relative_to_the_start() -> None:
    started = 1000.0
    samples = [[995.0, 5.0, 200], [999.9, 7.0, 200], [1001.0, 50.0, 200], [1004.0, 40.0, 500]]
    buckets = timeline.p99_buckets(samples, started, bucket_s=5.0)
    assert [b["t_s"] for b in buckets] == [-5.0, 0.0]
    assert buckets[0]["requests"] == 2 and buckets[0]["p99_ms"] == 7.0
    assert buckets[1]["errors"] == 1 and buckets[1]["p99_ms"] == 50.0


def test_budget_staircase_steps_every_window_after_the_boot() -> None:
    stairs = timeline.budget_staircase(500, 2.0, 225, 62.0, 200.0)
    # 225 ACTIVE at 2 s, 450 at 64 s, all 500 at 126 s: the harness's lower bound.
    steps = [(t, c) for (t, c), (_, before) in zip(stairs[1:], stairs, strict=False) if c > before]
    assert steps == [(2.0, 225), (64.0, 450), (126.0, 500)]
    assert stairs[-1] == (200.0, 500)


def _args(**changes: object) -> argparse.Namespace:
    defaults = {
        "quick": False,
        "storm_sizes": None,
        "storm_processes": (1, 3),
        "storm_kill_after": None,
        "storm_split": True,
        "storm_roles": 0,
        "storm_accounts": 1,
    }
    return argparse.Namespace(**(defaults | changes))


@pytest.mark.parametrize(
    ("changes", "plan"),
    [
        (
            {},
            [
                StormRun(100, 1),
                StormRun(500, 1),
                StormRun(500, 3),
                StormRun(100, 2, split=True),
                StormRun(500, 2, split=True),
            ],
        ),
        ({"storm_split": False}, [StormRun(100, 1), StormRun(500, 1), StormRun(500, 3)]),
        (
            {"quick": True},
            [StormRun(100, 1), StormRun(100, 3), StormRun(100, 2, split=True)],
        ),
        (
            {"storm_sizes": (30,), "storm_kill_after": 5.0},
            [StormRun(30, 1), StormRun(30, 3), StormRun(30, 2, split=True), StormRun(30, 3, 5.0)],
        ),
        (
            {"storm_processes": (1,), "storm_kill_after": 5.0, "storm_split": False},
            [StormRun(100, 1), StormRun(500, 1)],
        ),
        # Issue 23's roles storms (their probe pooled) and issue 20's storm over 3 accounts:
        # 3x the largest size, so each account gets what one account got alone.
        (
            {"storm_split": False, "storm_roles": 2, "storm_accounts": 3},
            [
                StormRun(100, 1),
                StormRun(500, 1),
                StormRun(500, 3),
                StormRun(500, 2, roles=True),
                StormRun(500, 2, roles=True),
                StormRun(1500, 1, accounts=3),
                StormRun(1500, 2, roles=True, accounts=3),
            ],
        ),
        (
            {"quick": True, "storm_roles": None, "storm_split": False},
            [StormRun(100, 1), StormRun(100, 3), StormRun(100, 2, roles=True)],
        ),
    ],
)
def test_storm_plan(changes: dict[str, object], plan: list[StormRun]) -> None:
    assert storm_plan(_args(**changes)) == plan


def _storm(processes: int = 1, kill: dict[str, object] | None = None) -> dict[str, object]:
    rows = [
        {
            "t_s": k * 0.25,
            "active": min(40, k),
            "failed": 0,
            "do_requests": min(44, 2 * k),
            "do_429": 1 if k > 30 else 0,
            "processes": processes,
        }
        for k in range(60)
    ]
    probe = {"requests": 10, "errors": 0, "p50_ms": 2.0, "p95_ms": 3.0, "p99_ms": 4.0}
    return {
        "orders": 40,
        "processes": processes,
        "kill": kill,
        "boot_s": 2.0,
        "poll_interval_ms": 1000,
        "max_attempts": 300,
        "all_active": True,
        "active": 40,
        "failed": 0,
        "seconds_to_all_active": 14.8,
        "payments": {"ok": 40, "errors": 0, "p50_ms": 5.0, "p99_ms": 9.0, "seconds": 0.5},
        "lower_bound": {"do_limit_s": 2.0, "our_budget_s": 2.0},
        "vs_do_bound": 7.4,
        "vs_budget_bound": 7.4,
        "do_requests": 44,
        "do_requests_by_route": {"create": 40, "list": 4},
        "do_requests_per_droplet": 1.1,
        "rate_limited_429": 1,
        "busiest_minute": timeline.busiest_minute([(r["t_s"], r["do_requests"]) for r in rows]),
        "max_droplets_per_order": 1,
        "probe_rate_per_s": 50.0,
        "probe_idle": probe,
        "probe_storm": probe | {"p99_ms": 6.0},
        "probe_first_10s": probe | {"p99_ms": 8.0},
        "p99_storm_vs_idle": 1.5,
        "p99_first_10s_vs_idle": 2.0,
        "sample_interval_s": 0.25,
        "timeline": rows,
        "probe_p99_timeline": [{"t_s": -5.0, "p99_ms": 4.0}, {"t_s": 0.0, "p99_ms": 6.0}],
    }


def test_storm_table_shows_processes_kill_and_busiest_minute() -> None:
    from bench.report_storm import storm_table

    killed = _storm(3, {"process": "service-3", "pids": [1], "at_s": 20.4})
    lines = storm_table({"storms": [_storm(1), killed]})
    assert "| 40 | 1 | 14.8 s |" in lines[2]
    assert "| 40 | 3 (one SIGKILLed at 20 s) |" in lines[3]
    assert "| **44** (44) |" in lines[3]


def test_storm_table_still_reads_results_from_before_the_timeline() -> None:
    from bench.report_storm import storm_table

    old = _storm()
    for key in ("processes", "kill", "busiest_minute", "timeline", "sample_interval_s"):
        del old[key]
    lines = storm_table({"storms": [old]})
    assert "| 40 | 1 | 14.8 s |" in lines[2]
    assert "| **1** | - |" in lines[2]  # 429s, then no busiest minute


def test_the_storm_picture_is_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")  # the `bench` extra
    from bench.plot import draw_storms

    killed = _storm(3, {"process": "service-3", "pids": [1], "at_s": 5.0})
    out = draw_storms([_storm(1), killed], tmp_path / "storm.png")
    assert out is not None
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_picture_without_a_timeline(tmp_path: Path) -> None:
    old = _storm()
    del old["timeline"]
    from bench.plot import draw_storms

    assert draw_storms([old], tmp_path / "storm.png") is None
    assert not (tmp_path / "storm.png").exists()
