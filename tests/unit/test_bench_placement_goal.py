"""The issue 20 goal row (placement over 10 accounts), judged on hand-made placement results."""

from __future__ import annotations

from typing import Any

from bench.report_goals import GOALS
from bench.report_placement import placement_goal, placement_section, within_noise

GOAL = "placement over 10 accounts costs payments/s within the noise of 1 account"


def _setting(name: str, accounts: int, median: float, low: float, high: float) -> dict[str, Any]:
    return {
        "setting": name,
        "accounts": accounts,
        "per_minute_per_account": 220 // accounts,
        "reps": 3,
        "payments_per_s": {"median": median, "min": low, "max": high},
        "p99_ms": 200.0,
        "errors": 0,
        "creates_per_run": [40, 41, 39],
        "lists_per_run": [100, 101, 99],
        "do_requests_per_run": [140, 142, 138],
        "rate_limited": 0,
        "placements_per_account": {"default": 120, "-": 30},
    }


def _result(ten_median: float, ratio: float) -> dict[str, Any]:
    summary = {
        "one": _setting("1 account", 1, 100.0, 90.0, 110.0),
        "ten": _setting("10 accounts", 10, ten_median, ten_median - 5, ten_median + 5),
        "ratio": {"median": ratio, "min": ratio - 0.05, "max": ratio + 0.05, "per_rep": [ratio]},
    }
    summary["within_noise"] = within_noise(summary)
    return {
        "config": {"accounts": 10, "connections": 16, "duration_s": 4.0},
        "summary": summary,
    }


def test_the_goal_row_is_judged_on_the_placement_phase() -> None:
    row = next(g for g in GOALS if g[0] == GOAL)
    assert row[1:3] == ("issue 20", "placement")
    assert row[3] is placement_goal


def test_met_within_the_spread_of_the_one_account_runs() -> None:
    # 92 is below the 1-account median (100) but not below its slowest run (90).
    text, met = placement_goal(_result(92.0, 0.9)) or ("", False)
    assert met
    assert "92.0 vs 100.0" in text
    assert "0.9x" in text


def test_met_on_the_ratio_alone() -> None:
    # Below the slowest 1-account run, but the paired runs say 0.96.
    assert (placement_goal(_result(85.0, 0.96)) or ("", False))[1]


def test_not_met_below_the_spread_and_the_ratio() -> None:
    text, met = placement_goal(_result(80.0, 0.8)) or ("", True)
    assert not met
    assert "80.0" in text


def test_not_measured_without_both_settings() -> None:
    assert placement_goal({"summary": {}}) is None
    result = _result(100.0, 1.0)
    del result["summary"]["ten"]
    assert placement_goal(result) is None


def test_the_section_renders_both_settings() -> None:
    lines = "\n".join(placement_section(_result(92.0, 0.9)))
    assert "| 1 account | 220 x 1 = 220 |" in lines
    assert "| 10 accounts | 22 x 10 = 220 |" in lines
    assert "within the noise" in lines
    assert placement_section(None)[0].startswith("_not measured")


def test_failed_payments_void_the_goal() -> None:
    """Orders paid twice answer a fast 409: such a run measures nothing (a full run
    once started the placement phase on orders the api phase had paid)."""
    result = _result(100.0, 1.0)
    assert (placement_goal(result) or ("", False))[1]
    result["summary"]["ten"]["errors"] = 1200
    text, met = placement_goal(result) or ("", True)
    assert not met
    assert "1200 payments failed" in text
