"""The issue 23 goal rows of docs/benchmarks.md, judged on hand-made api summaries."""

from __future__ import annotations

from typing import Any

from bench.report_goals import _detail_p99_at_64, _paid_api_only


def _row(target: str, endpoint: str, conns: int, **figures: Any) -> dict[str, Any]:
    return {"target": target, "endpoint": endpoint, "connections": conns, **figures}


def test_paid_api_only_is_judged_on_its_ratio_at_16() -> None:
    api = {
        "summary": [
            _row("ours-api-only", "pay", 16, ratio=0.55, ratio_min=0.5, ratio_max=0.6),
            _row("ours", "pay", 16, ratio=0.2, ratio_min=0.2, ratio_max=0.2),
        ]
    }
    text, met = _paid_api_only(api) or ("", False)
    assert met
    assert "55" in text


def test_paid_api_only_not_measured_without_the_target() -> None:
    assert _paid_api_only({"summary": [_row("ours", "pay", 16, ratio=0.9)]}) is None


def test_detail_p99_at_64_compares_against_the_ceiling() -> None:
    api = {
        "summary": [
            _row("ours", "detail", 64, p99_ms=400.0, p50_ms=11.0),
            _row("ceiling", "detail", 64, p99_ms=40.0, p50_ms=20.0),
        ]
    }
    text, met = _detail_p99_at_64(api) or ("", True)
    assert not met
    assert "10.0x" in text
    api["summary"][0]["p99_ms"] = 80.0
    assert (_detail_p99_at_64(api) or ("", False))[1]
