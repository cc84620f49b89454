"""The v1.1 duration settings of SPEC section 2: ISO 8601 or seconds, never negative."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from order_service.config import ConfigError, Settings, load_settings

VARIABLES = [name.upper() for name in Settings.model_fields]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INTERNAL_API_KEY", "k")
    monkeypatch.setenv("JWT_ALGORITHM", "HS256")
    monkeypatch.setenv("JWT_SECRET", "a-secret-that-is-long-enough-for-hs256")


def test_defaults_of_the_spec() -> None:
    settings = load_settings()
    assert settings.action_timeout == timedelta(minutes=10)
    assert settings.lifecycle_scan_interval == timedelta(seconds=30)
    assert settings.unpaid_order_ttl == timedelta(days=7)
    assert settings.expiry_reminders == (timedelta(days=7), timedelta(days=3), timedelta(days=1))
    assert settings.suspend_grace == timedelta(days=1)
    assert settings.terminate_after == timedelta(days=7)
    assert settings.webhook_timeout == timedelta(seconds=10)
    assert settings.event_retention == timedelta(days=30)
    assert [w.total_seconds() for w in settings.webhook_retry_schedule] == [
        5,
        300,
        1800,
        7200,
        18000,
        36000,
        36000,
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("P7D", timedelta(days=7)),
        ("PT90S", timedelta(seconds=90)),
        ("PT0.5S", timedelta(seconds=0.5)),
        ("90", timedelta(seconds=90)),
        ("0.25", timedelta(seconds=0.25)),
        (" PT1H ", timedelta(hours=1)),
    ],
)
def test_iso_8601_or_seconds(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: timedelta
) -> None:
    monkeypatch.setenv("SUSPEND_GRACE", raw)
    assert load_settings().suspend_grace == expected


def test_lists_are_comma_separated_and_reminders_sorted_largest_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EXPIRY_REMINDERS", "P1D, P7D,PT3600S,P1D")
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE", "PT0.1S,2")
    settings = load_settings()
    assert settings.expiry_reminders == (timedelta(days=7), timedelta(days=1), timedelta(hours=1))
    assert settings.webhook_retry_schedule == (timedelta(seconds=0.1), timedelta(seconds=2))


def test_empty_reminders_mean_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPIRY_REMINDERS", "")
    assert load_settings().expiry_reminders == ()


def test_zero_ttl_means_never(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNPAID_ORDER_TTL", "0")
    assert load_settings().unpaid_order_ttl == timedelta(0)


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("SUSPEND_GRACE", "-P1D"),
        ("TERMINATE_AFTER", "-5"),
        ("SUSPEND_GRACE", "banana"),
        ("EVENT_RETENTION", "P1X"),
        ("EXPIRY_REMINDERS", "P1D,soon"),
        ("EXPIRY_REMINDERS", "-PT1S"),
        ("WEBHOOK_RETRY_SCHEDULE", ""),
        ("ACTION_TIMEOUT", "0"),
        ("LIFECYCLE_SCAN_INTERVAL", "PT0S"),
        ("WEBHOOK_TIMEOUT", "-1"),
    ],
)
def test_bad_durations_stop_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, raw: str
) -> None:
    monkeypatch.setenv(variable, raw)
    with pytest.raises(ConfigError) as error:
        load_settings()
    message = str(error.value)
    assert variable in message
    assert "\n" not in message
