"""The billing period of SPEC section 9, as pure functions.

A duration is a number of calendar months: a day past the end of a shorter
month is that month's last day (Jan 31 + 1 month = Feb 28 or 29), and
several periods are added in one step (Jan 31 + 2 months = Mar 31, not
Mar 28), which is why `relativedelta` gets the total number of months at
once instead of being applied period after period.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta

from order_service.orders.states import Duration

MONTHS: dict[Duration, int] = {
    Duration.MONTHLY: 1,
    Duration.QUARTERLY: 3,
    Duration.SEMI_ANNUAL: 6,
    Duration.ANNUAL: 12,
}


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` plus `months` calendar months, clamped to the last day of the month."""
    return moment + relativedelta(months=months)


def extend(moment: datetime, duration: Duration | str, periods: int = 1) -> datetime:
    """The end of `periods` periods of `duration` starting at `moment`."""
    return add_months(moment, MONTHS[Duration(duration)] * periods)


def whole_seconds(delta: timedelta) -> int:
    """A duration in whole seconds, rounded down (a plan change is prorated to the second)."""
    return delta.days * 86_400 + delta.seconds


def period_seconds(expires_at: datetime, duration: Duration | str) -> int:
    """The length of one period of `duration` that ends at `expires_at` (SPEC section 15):
    from the same calendar moment `duration` months earlier, clamped like `extend`."""
    return whole_seconds(expires_at - add_months(expires_at, -MONTHS[Duration(duration)]))


def next_reminder_at(
    expires_at: datetime | None,
    now: datetime,
    thresholds: Sequence[timedelta],
    *,
    below: timedelta | None = None,
) -> datetime | None:
    """When the next EXPIRING reminder of the period is due, or None when none is left.

    The reminder of threshold T is due at expires_at - T. Thresholds whose
    time has already passed at `now` are skipped (a period set, renewed or
    changed late does not fire a burst of stale reminders), and only
    thresholds smaller than `below` count (after the reminder of `below`
    was sent, the next one is a smaller threshold). The threshold of the
    stored time is expires_at - next_reminder_at.
    """
    if expires_at is None or expires_at <= now:
        return None
    for threshold in sorted(thresholds, reverse=True):
        if threshold <= timedelta(0) or (below is not None and threshold >= below):
            continue
        if expires_at - threshold >= now:
            return expires_at - threshold
    return None


def first_period(order: Any, now: datetime, thresholds: Sequence[timedelta]) -> dict[str, Any]:
    """Columns set when an order becomes ACTIVE: the first period, only the first time.

    `order` is the locked row (a mapping); reaching ACTIVE again (unsuspend)
    moves nothing.
    """
    if order["activated_at"] is not None:
        return {}
    expires_at = extend(now, order["duration"])
    return {
        "activated_at": now,
        "expires_at": expires_at,
        "next_reminder_at": next_reminder_at(expires_at, now, thresholds),
        # The next period's renewal is still to be opened (rule 6).
        "renewal_due_at": expires_at,
    }


def iso_duration(delta: timedelta) -> str:
    """A threshold as ISO 8601 (P3D, PT12H, P1DT6H, PT90S) for the EXPIRING event."""
    total = int(delta.total_seconds())
    micro = delta.microseconds
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    time = ""
    if hours:
        time += f"{hours}H"
    if minutes:
        time += f"{minutes}M"
    if seconds or micro:
        time += f"{seconds}.{micro:06d}".rstrip("0").rstrip(".") + "S" if micro else f"{seconds}S"
    text = "P" + (f"{days}D" if days else "")
    if time:
        text += "T" + time
    return text if text != "P" else "PT0S"
