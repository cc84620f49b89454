"""The price rule of a plan change (SPEC section 15), table-driven, integers only.

amountDue = max(0, floor((newPrice - oldPrice) x remainingSeconds / periodSeconds)),
where periodSeconds is one duration ending at expiresAt (calendar months) and
remainingSeconds = expiresAt - now.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from order_service.lifecycle.period import period_seconds, whole_seconds
from order_service.orders.pricing import prorated_amount
from order_service.plan_changes.quote import Prices, amount

DAY = 86_400
# A MONTHLY order whose period ends on 2027-03-15 12:00 UTC: the period began
# 2027-02-15 12:00, 28 days (2,419,200 s) long.
EXPIRES = datetime(2027, 3, 15, 12, 0, tzinfo=UTC)
FEBRUARY = 28 * DAY


def prices(old: int, new: int) -> Prices:
    return Prices("a", "b", "B", "s-1vcpu-2gb", old, new, 25, 50)


@pytest.mark.parametrize(
    ("case", "old", "new", "now", "duration", "expected_remaining", "expected_period", "due"),
    [
        # Basic (90,000 after promo) -> Standard (185,000 after promo), half the period left.
        (
            "upgrade",
            90_000,
            185_000,
            EXPIRES - timedelta(days=14),
            "MONTHLY",
            14 * DAY,
            FEBRUARY,
            47_500,
        ),
        # A cheaper plan costs nothing: no credit is given.
        (
            "downgrade",
            185_000,
            90_000,
            EXPIRES - timedelta(days=14),
            "MONTHLY",
            14 * DAY,
            FEBRUARY,
            0,
        ),
        # Three months paid ahead (renewed early): all the remaining time counts.
        (
            "several periods ahead",
            90_000,
            185_000,
            EXPIRES - timedelta(days=84),
            "MONTHLY",
            84 * DAY,
            FEBRUARY,
            285_000,
        ),
        # The last second of the period: floor(95,000 x 1 / 2,419,200) = 0.
        ("last second", 90_000, 185_000, EXPIRES - timedelta(seconds=1), "MONTHLY", 1, FEBRUARY, 0),
        # Rounding: 95,000 x 1,000,000 / 2,419,200 = 39,269.18... -> 39,269 (floored, whole IDR).
        (
            "IDR rounding",
            90_000,
            185_000,
            EXPIRES - timedelta(seconds=1_000_000),
            "MONTHLY",
            1_000_000,
            FEBRUARY,
            39_269,
        ),
        # A fraction of a second left over is not a second: 0.9 s -> 0.
        (
            "sub-second",
            90_000,
            185_000,
            EXPIRES - timedelta(milliseconds=900),
            "MONTHLY",
            0,
            FEBRUARY,
            0,
        ),
        # ANNUAL: the year 2026-03-15 -> 2027-03-15 (365 days); 2,000,000 more a year, 73 days left.
        (
            "annual",
            900_000,
            2_900_000,
            EXPIRES - timedelta(days=73),
            "ANNUAL",
            73 * DAY,
            365 * DAY,
            400_000,
        ),
        # Expired but still ACTIVE (within SUSPEND_GRACE): nothing remains, nothing is due.
        ("after expiry", 90_000, 185_000, EXPIRES + timedelta(hours=1), "MONTHLY", 0, FEBRUARY, 0),
    ],
)
def test_price_rule(
    case: str,
    old: int,
    new: int,
    now: datetime,
    duration: str,
    expected_remaining: int,
    expected_period: int,
    due: int,
) -> None:
    result = amount(prices(old, new), EXPIRES, duration, now)
    assert (result.remaining_s, result.period_s, result.amount_due) == (
        expected_remaining,
        expected_period,
        due,
    ), case
    assert isinstance(result.amount_due, int)


def test_period_is_calendar_months_ending_at_expiry() -> None:
    # Mar 31 - 1 month = Feb 28 (clamped): a 31-day period; a leap year's Feb 29 too.
    assert period_seconds(datetime(2027, 3, 31, tzinfo=UTC), "MONTHLY") == 31 * DAY
    assert period_seconds(datetime(2028, 3, 31, tzinfo=UTC), "MONTHLY") == 31 * DAY
    # Feb 1 -> May 1.
    assert period_seconds(datetime(2027, 5, 1, tzinfo=UTC), "QUARTERLY") == (28 + 31 + 30) * DAY
    assert whole_seconds(timedelta(seconds=-0.5)) == -1


def test_prorated_amount_uses_integers_only() -> None:
    # Large prices: no float would keep every IDR.
    assert prorated_amount(0, 10**15 + 1, 1, 1) == 10**15 + 1
    assert prorated_amount(0, 3, 1, 3) == 1 and prorated_amount(0, 2, 1, 3) == 0
    with pytest.raises(ValueError):
        prorated_amount(0, 1, 1, 0)
