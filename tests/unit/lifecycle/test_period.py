"""The billing period and its reminders (SPEC section 9), pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from order_service.lifecycle.period import (
    MONTHS,
    add_months,
    extend,
    first_period,
    iso_duration,
    next_reminder_at,
)
from order_service.orders.states import Duration

REMINDERS = (timedelta(days=7), timedelta(days=3), timedelta(days=1))


def at(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        (at(2025, 1, 31), 1, at(2025, 2, 28)),
        (at(2024, 1, 31), 1, at(2024, 2, 29)),  # leap year
        (at(2024, 1, 31), 2, at(2024, 3, 31)),  # two months in one step, not Feb 29 + 1
        (at(2024, 2, 29), 12, at(2025, 2, 28)),
        (at(2024, 2, 29), 48, at(2028, 2, 29)),
        (at(2025, 3, 31), 1, at(2025, 4, 30)),
        (at(2025, 8, 31), 6, at(2026, 2, 28)),
        (at(2025, 11, 30), 3, at(2026, 2, 28)),
        (at(2025, 12, 15, 13), 1, at(2026, 1, 15, 13)),  # over the year, time kept
    ],
)
def test_add_months_clamps_to_the_last_day_of_shorter_months(
    start: datetime, months: int, end: datetime
) -> None:
    assert add_months(start, months) == end


@pytest.mark.parametrize(
    ("duration", "end"),
    [
        (Duration.MONTHLY, at(2024, 2, 29)),
        (Duration.QUARTERLY, at(2024, 4, 30)),
        (Duration.SEMI_ANNUAL, at(2024, 7, 31)),
        (Duration.ANNUAL, at(2025, 1, 31)),
    ],
)
def test_every_duration_is_its_number_of_months(duration: Duration, end: datetime) -> None:
    assert extend(at(2024, 1, 31), duration) == end
    assert extend(at(2024, 1, 31), duration.value) == end


def test_several_periods_are_added_in_one_step() -> None:
    assert MONTHS == {
        Duration.MONTHLY: 1,
        Duration.QUARTERLY: 3,
        Duration.SEMI_ANNUAL: 6,
        Duration.ANNUAL: 12,
    }
    assert extend(at(2025, 1, 31), Duration.MONTHLY, 2) == at(2025, 3, 31)
    assert extend(at(2025, 1, 31), Duration.QUARTERLY, 4) == at(2026, 1, 31)
    assert extend(at(2025, 1, 31), Duration.ANNUAL, 12) == at(2037, 1, 31)


def test_first_reminder_is_the_largest_threshold() -> None:
    expires = at(2025, 2, 1)
    assert next_reminder_at(expires, at(2025, 1, 1), REMINDERS) == at(2025, 1, 25)


def test_thresholds_already_past_are_skipped() -> None:
    expires = at(2025, 2, 1)
    # 5 days left: the 7-day reminder is past, the 3-day one is next.
    assert next_reminder_at(expires, at(2025, 1, 27), REMINDERS) == at(2025, 1, 29)
    # 12 hours left: every threshold is past.
    assert next_reminder_at(expires, at(2025, 1, 31, 12), REMINDERS) is None
    # Expired or no period: nothing.
    assert next_reminder_at(expires, at(2025, 2, 2), REMINDERS) is None
    assert next_reminder_at(None, at(2025, 1, 1), REMINDERS) is None


def test_after_a_reminder_the_next_is_a_smaller_threshold() -> None:
    expires = at(2025, 2, 1)
    now = at(2025, 1, 25)  # the 7-day reminder is being sent
    after = next_reminder_at(expires, now, REMINDERS, below=timedelta(days=7))
    assert after == at(2025, 1, 29)
    assert next_reminder_at(expires, after, REMINDERS, below=timedelta(days=3)) == at(2025, 1, 31)
    assert next_reminder_at(expires, at(2025, 1, 31), REMINDERS, below=timedelta(days=1)) is None


def test_a_renewal_starts_the_count_again() -> None:
    # Reminders of the old period were sent; the renewal sets a new end.
    new_expires = at(2025, 3, 1)
    assert next_reminder_at(new_expires, at(2025, 1, 31), REMINDERS) == at(2025, 2, 22)
    # Renewed with 2 days left of the new period (ops set a near expiry): 1 day is next.
    assert next_reminder_at(at(2025, 2, 3), at(2025, 2, 1), REMINDERS) == at(2025, 2, 2)


def test_no_reminders_configured() -> None:
    assert next_reminder_at(at(2025, 2, 1), at(2025, 1, 1), ()) is None


def test_unsorted_thresholds_are_read_largest_first() -> None:
    thresholds = (timedelta(days=1), timedelta(days=7), timedelta(days=3))
    assert next_reminder_at(at(2025, 2, 1), at(2025, 1, 1), thresholds) == at(2025, 1, 25)


def test_first_period_is_set_only_the_first_time() -> None:
    now = at(2024, 1, 31, 10)
    fresh = {"activated_at": None, "duration": "MONTHLY"}
    assert first_period(fresh, now, REMINDERS) == {
        "activated_at": now,
        "expires_at": at(2024, 2, 29, 10),
        "next_reminder_at": at(2024, 2, 22, 10),
        "renewal_due_at": at(2024, 2, 29, 10),
    }
    again = {"activated_at": now, "duration": "MONTHLY"}
    assert first_period(again, at(2024, 3, 5), REMINDERS) == {}


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(days=7), "P7D"),
        (timedelta(days=1), "P1D"),
        (timedelta(hours=12), "PT12H"),
        (timedelta(days=1, hours=6), "P1DT6H"),
        (timedelta(seconds=90), "PT1M30S"),
        (timedelta(seconds=0.5), "PT0.5S"),
        (timedelta(0), "PT0S"),
    ],
)
def test_thresholds_are_written_as_iso_8601(delta: timedelta, text: str) -> None:
    assert iso_duration(delta) == text
