"""Pricing rules of SPEC section 6 over catalog data parsed by the real schemas."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from order_service.catalog.schemas import Plan, Promo, to_whole_idr
from order_service.orders.pricing import (
    Quote,
    base_price_for,
    best_promo_discount,
    promo_discount,
    promo_is_running,
)
from order_service.orders.states import Duration

NOW = datetime(2025, 6, 15, 12, 0, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def promo(
    discount_type: str = "PERCENT",
    value: Any = 10,
    *,
    start: str | None = iso(NOW - timedelta(days=1)),
    end: str | None = iso(NOW + timedelta(days=1)),
    active: bool = True,
) -> dict[str, Any]:
    return {
        "id": "promo",
        "name": "promo",
        "discountType": discount_type,
        "discountValue": value,
        "startDate": start,
        "endDate": end,
        "isActive": active,
    }


def pricing(duration: str, price: Any, *, active: bool = True) -> dict[str, Any]:
    return {
        "id": f"p-{duration}",
        "duration": duration,
        "price": price,
        "cost": 0,
        "isActive": active,
    }


def plan(
    pricings: list[dict[str, Any]] | None = None, promos: list[dict[str, Any]] | None = None
) -> Plan:
    return Plan.model_validate(
        {
            "id": "plan-1",
            "name": "basic-1gb",
            "displayName": "Basic 1GB",
            "description": "",
            "cpu": 1,
            "memoryMb": 1024,
            "diskGb": 25,
            "bandwidthTb": 1,
            "provider": "DIGITALOCEAN",
            "providerSizeSlug": "s-1vcpu-1gb",
            "isActive": True,
            "allowedImageIds": [],
            "pricings": pricings
            if pricings is not None
            else [pricing("MONTHLY", 100000), pricing("YEARLY", 1000000)],
            "promos": promos or [],
        }
    )


def one_promo(**kwargs: Any) -> Promo:
    return Promo.model_validate(promo(**kwargs))


# ------------------------------------------------------------------ base price


def test_monthly_uses_monthly_price() -> None:
    assert base_price_for(plan(), Duration.MONTHLY) == 100000


def test_annual_uses_yearly_price() -> None:
    assert base_price_for(plan(), Duration.ANNUAL) == 1000000


@pytest.mark.parametrize("duration", [Duration.QUARTERLY, Duration.SEMI_ANNUAL])
def test_durations_without_catalog_price_have_none(duration: Duration) -> None:
    assert base_price_for(plan(), duration) is None


def test_quarterly_is_priced_when_the_catalog_offers_it() -> None:
    offered = plan([pricing("MONTHLY", 100000), pricing("QUARTERLY", 270000)])
    assert base_price_for(offered, Duration.QUARTERLY) == 270000


def test_inactive_pricing_is_ignored() -> None:
    only_inactive = plan([pricing("MONTHLY", 100000, active=False)])
    assert base_price_for(only_inactive, Duration.MONTHLY) is None
    # An inactive row listed first does not shadow the active one.
    both = plan([pricing("MONTHLY", 50000, active=False), pricing("MONTHLY", 120000)])
    assert base_price_for(both, Duration.MONTHLY) == 120000


def test_float_price_with_integral_value_is_whole_idr() -> None:
    price = base_price_for(plan([pricing("MONTHLY", 350000.0)]), Duration.MONTHLY)
    assert price == 350000
    assert type(price) is int


# ---------------------------------------------------------------- promo amount


def test_percent_discount_is_floored() -> None:
    # 99999 x 12.5 % = 12499.875 -> 12499
    assert promo_discount(one_promo(value=12.5), 99999) == 12499
    # 99999 x 10 % = 9999.9 -> 9999
    assert promo_discount(one_promo(value=10), 99999) == 9999


def test_percent_discount_is_exact_for_float_values() -> None:
    # 0.1 + 0.2 style float noise must not change the result: 33.3 % of 1000 = 333.
    assert promo_discount(one_promo(value=33.3), 1000) == 333


def test_fixed_discount_is_the_value() -> None:
    assert promo_discount(one_promo(discount_type="FIXED", value=15000), 200000) == 15000


def test_fixed_discount_accepts_integral_float() -> None:
    assert promo_discount(one_promo(discount_type="FIXED", value=15000.0), 200000) == 15000


def test_fixed_discount_is_capped_at_base() -> None:
    assert promo_discount(one_promo(discount_type="FIXED", value=500000), 100000) == 100000


def test_percent_over_100_is_capped_at_base() -> None:
    assert promo_discount(one_promo(value=150), 100000) == 100000


def test_fixed_promo_with_non_integral_value_is_refused_by_the_schema() -> None:
    with pytest.raises(ValidationError):
        one_promo(discount_type="FIXED", value=1000.5)


@pytest.mark.parametrize("value", [-5, "abc", True, None, float("nan")])
def test_promo_value_must_be_a_non_negative_number(value: Any) -> None:
    with pytest.raises(ValidationError):
        one_promo(value=value)


# ---------------------------------------------------------------- which promo


def test_largest_discount_wins() -> None:
    offered = plan(
        promos=[
            promo("PERCENT", 5),  # 10000 of 200000
            promo("FIXED", 15000),
            promo("PERCENT", 7),  # 14000
        ]
    )
    assert best_promo_discount(offered, 200000, NOW) == 15000
    # For a larger base the percentage wins: 5 % and 7 % of 2,000,000.
    assert best_promo_discount(offered, 2000000, NOW) == 140000


def test_no_promo_means_no_discount() -> None:
    assert best_promo_discount(plan(), 100000, NOW) == 0


@pytest.mark.parametrize(
    "ignored",
    [
        promo(value=50, start=iso(NOW - timedelta(days=60)), end=iso(NOW - timedelta(days=30))),
        promo(value=50, active=False),
        promo(value=50, start=iso(NOW + timedelta(days=1)), end=iso(NOW + timedelta(days=30))),
        promo(value=50, start=iso(NOW - timedelta(days=1)), end=iso(NOW)),  # ends exactly now
    ],
    ids=["expired", "inactive", "not-yet-started", "ends-now"],
)
def test_promos_not_running_are_ignored(ignored: dict[str, Any]) -> None:
    offered = plan(promos=[ignored, promo("PERCENT", 10)])
    assert best_promo_discount(offered, 100000, NOW) == 10000
    assert not promo_is_running(Promo.model_validate(ignored), NOW)


def test_promo_starting_exactly_now_runs() -> None:
    assert promo_is_running(one_promo(start=iso(NOW)), NOW)


def test_promo_without_dates_runs() -> None:
    assert promo_is_running(one_promo(start=None, end=None), NOW)


@pytest.fixture
def far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A local zone far from UTC, so reading a naive date as local time would show."""
    monkeypatch.setenv("TZ", "Asia/Jakarta")
    time.tzset()
    assert time.timezone == -7 * 3600
    yield
    monkeypatch.undo()
    time.tzset()


def test_naive_dates_are_read_as_utc(far_from_utc: None) -> None:
    naive = one_promo(start="2025-06-15T12:00:00", end="2025-06-15T13:00:00")
    assert naive.start_date is not None and naive.start_date.tzinfo is None
    assert not promo_is_running(naive, NOW - timedelta(seconds=1))
    assert promo_is_running(naive, NOW)
    assert promo_is_running(naive, NOW + timedelta(minutes=59))
    assert not promo_is_running(naive, NOW + timedelta(hours=1))


def test_zoned_dates_are_compared_as_instants() -> None:
    # 19:00 in Jakarta (+07:00) is 12:00 UTC.
    zoned = one_promo(start="2025-06-15T19:00:00+07:00", end=None)
    assert promo_is_running(zoned, NOW)
    assert not promo_is_running(zoned, NOW - timedelta(seconds=1))


# ---------------------------------------------------------------------- quote


def test_quote_final_price() -> None:
    assert Quote(100000, 10000, "HEMAT20", 18000).final_price == 72000
    assert Quote(100000, 10000).price_after_promo == 90000


def test_quote_final_price_clamps_at_zero() -> None:
    assert Quote(100000, 10000, "BIGFIXED", 5000000).final_price == 0


# ---------------------------------------------------------------- to_whole_idr


@pytest.mark.parametrize(
    ("value", "expected"),
    [(350000.0, 350000), (0, 0), (100000, 100000), ("250000", 250000), (2**53, 2**53)],
)
def test_to_whole_idr_accepts(value: Any, expected: int) -> None:
    result = to_whole_idr(value)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize(
    "value",
    [
        100000.5,
        0.1,
        -1,
        -100.0,
        True,
        False,
        None,
        [1],
        "abc",
        float("inf"),
        float("nan"),
        2**53 + 1,
        1e20,
    ],
    ids=repr,
)
def test_to_whole_idr_refuses(value: Any) -> None:
    with pytest.raises(ValueError):
        to_whole_idr(value)


def test_pricing_schema_refuses_non_integral_price() -> None:
    with pytest.raises(ValidationError):
        plan([pricing("MONTHLY", 100000.5)])


# ------------------------------------------------------------------ properties

amounts = st.integers(min_value=0, max_value=10**12)
percent_values = st.decimals(
    min_value=0, max_value=200, places=2, allow_nan=False, allow_infinity=False
)


@given(base=amounts, value=percent_values)
def test_percent_discount_is_floor_and_within_base(base: int, value: Decimal) -> None:
    discount = promo_discount(one_promo(value=str(value)), base)
    assert 0 <= discount <= base
    exact = Decimal(base) * value / 100
    assert discount == min(base, int(exact // 1))


@given(base=amounts, value=amounts)
def test_fixed_discount_within_base(base: int, value: int) -> None:
    discount = promo_discount(one_promo(discount_type="FIXED", value=value), base)
    assert discount == min(value, base)


@given(
    base=amounts,
    promos=st.lists(
        st.one_of(
            st.tuples(st.just("PERCENT"), st.integers(0, 150)),
            st.tuples(st.just("FIXED"), amounts),
        ),
        max_size=5,
    ),
    coupon=amounts,
)
def test_final_price_is_never_negative_nor_above_base(
    base: int, promos: list[tuple[str, int]], coupon: int
) -> None:
    offered = plan(promos=[promo(kind, value) for kind, value in promos])
    discount = best_promo_discount(offered, base, NOW)
    assert 0 <= discount <= base
    quote = Quote(base, discount, "C" if coupon else None, coupon)
    assert 0 <= quote.final_price <= base
    assert quote.final_price == max(0, base - discount - coupon)
