"""The webhooks and lifecycle benchmarks' arithmetic (bench/webhook_math.py, bench/lifecycle.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bench.lifecycle import ratios
from bench.webhook_math import delivery_summary, match_arrivals, p99_ratio, parse_time

T0 = datetime(2026, 12, 2, 14, 0, tzinfo=UTC).timestamp()


def _event(n: int, created: float, kind: str = "order.paid") -> dict[str, object]:
    stamp = datetime.fromtimestamp(created, UTC).isoformat().replace("+00:00", "Z")
    return {"id": f"evt-{n}", "type": kind, "createdAt": stamp}


def test_parse_time_reads_the_spec_timestamp_with_z_as_utc() -> None:
    assert parse_time("2026-12-02T14:00:00Z") == T0
    assert parse_time("2026-12-02T14:00:00.250000Z") == pytest.approx(T0 + 0.25)


def test_every_feed_event_is_matched_to_its_first_arrival() -> None:
    events = [_event(1, T0), _event(2, T0 + 1, "order.provisioning"), _event(3, T0 + 2)]
    arrivals = {
        "evt-1": [T0 + 0.5, T0 + 0.1],  # twice: the first arrival counts
        "evt-2": [T0 + 1.2],
        "ping-1": [T0 + 3],  # not an event of these orders
    }
    matched = match_arrivals(events, arrivals)
    assert matched["missing"] == ["evt-3"]
    assert matched["delivered"] == 2
    assert matched["duplicates"] == 1
    assert matched["unexpected"] == 1
    assert sorted(round(x) for x in matched["latencies_ms"]) == [100, 200]
    assert matched["first_arrival"] == T0 + 0.1
    assert matched["last_arrival"] == T0 + 1.2
    assert matched["by_type"] == {"order.paid": 2, "order.provisioning": 1}


def test_a_missing_event_means_not_all_delivered() -> None:
    events = [_event(1, T0), _event(2, T0)]
    summary = delivery_summary(match_arrivals(events, {"evt-1": [T0 + 1]}), started=T0)
    assert summary["all_delivered"] is False
    assert summary["missing"] == 1
    assert summary["missing_ids"] == ["evt-2"]


def test_delivery_rate_is_events_over_time_from_payments_to_the_last_first_arrival() -> None:
    events = [_event(n, T0 + n / 100) for n in range(100)]
    arrivals = {f"evt-{n}": [T0 + n / 100 + 0.05 + (1.0 if n == 99 else 0)] for n in range(100)}
    summary = delivery_summary(match_arrivals(events, arrivals), started=T0)
    assert summary["all_delivered"] is True
    assert summary["seconds_to_last"] == pytest.approx(2.04)
    assert summary["deliveries_per_s"] == pytest.approx(100 / 2.04, abs=0.1)
    assert summary["latency_p50_ms"] == pytest.approx(50, abs=0.01)
    assert summary["latency_p99_ms"] == pytest.approx(1050, abs=0.01)


def test_nothing_delivered_has_no_rate_and_is_not_all_delivered() -> None:
    summary = delivery_summary(match_arrivals([], {}), started=T0)
    assert summary["all_delivered"] is False
    assert summary["deliveries_per_s"] is None


def _run(setup: str, rep: int, p99: float) -> dict[str, object]:
    return {"setup": setup, "rep": rep, "probe": {"p99_ms": p99}}


def test_dead_endpoint_ratio_per_repetition_and_of_the_medians() -> None:
    runs = [
        _run("none", 0, 10.0),
        _run("dead", 0, 11.0),
        _run("dead", 1, 30.0),
        _run("none", 1, 20.0),
        _run("none", 2, 12.0),
        _run("dead", 2, 12.0),
    ]
    summary = p99_ratio(runs)
    assert summary["per_rep"] == [1.1, 1.5, 1.0]
    assert summary["none_p99_ms"] == 12.0
    assert summary["dead_p99_ms"] == 12.0
    assert summary["ratio"] == 1.0


def test_lifecycle_ratios_are_largest_size_over_smallest() -> None:
    results = [
        {"orders": 100_000, "idle_scan_ms": 3.0, "due_scan_s": 1.2},
        {"orders": 10_000, "idle_scan_ms": 2.0, "due_scan_s": 1.0},
    ]
    assert ratios(results) == {
        "small": 10_000,
        "large": 100_000,
        "idle_scan_ms": 1.5,
        "due_scan_s": 1.2,
    }
    assert ratios(results[:1]) == {}
