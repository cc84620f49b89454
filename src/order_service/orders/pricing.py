"""The pricing rules of SPEC section 6, as pure functions over catalog data.

All arithmetic is on integers (and exact Decimals for percentages), so every
amount is whole IDR with no float rounding anywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from order_service.catalog.schemas import Plan, Promo
from order_service.orders.states import Duration

# catalog-service prices MONTHLY and YEARLY. ANNUAL is the catalog's YEARLY;
# the other durations are looked up under their own name, so they are priced
# only if the catalog ever offers them (otherwise INVALID_DURATION).
CATALOG_DURATION: dict[Duration, str] = {
    Duration.MONTHLY: "MONTHLY",
    Duration.QUARTERLY: "QUARTERLY",
    Duration.SEMI_ANNUAL: "SEMI_ANNUAL",
    Duration.ANNUAL: "YEARLY",
}


@dataclass(frozen=True, slots=True)
class Quote:
    base_price: int
    promo_discount: int
    coupon_code: str | None = None
    coupon_discount: int = 0

    @property
    def final_price(self) -> int:
        return max(0, self.base_price - self.promo_discount - self.coupon_discount)

    @property
    def price_after_promo(self) -> int:
        return self.base_price - self.promo_discount

    def price_columns(self) -> dict[str, int | str | None]:
        """The snapshot columns an order and a renewal both store (one list, not two)."""
        return {
            "base_price": self.base_price,
            "promo_discount": self.promo_discount,
            "coupon_code": self.coupon_code,
            "coupon_discount": self.coupon_discount,
            "final_price": self.final_price,
            "currency": "IDR",
        }


def base_price_for(plan: Plan, duration: Duration) -> int | None:
    """The active price for the duration, or None when the plan has none."""
    wanted = CATALOG_DURATION[duration]
    for pricing in plan.pricings:
        if pricing.is_active and pricing.duration == wanted:
            return pricing.price
    return None


def promo_is_running(promo: Promo, now: datetime) -> bool:
    if not promo.is_active:
        return False
    if promo.start_date is not None and _aware(promo.start_date) > now:
        return False
    return not (promo.end_date is not None and _aware(promo.end_date) <= now)


def promo_discount(promo: Promo, base_price: int) -> int:
    """PERCENT: floor(base * value / 100); FIXED: the value. Never more than base."""
    if promo.discount_type == "PERCENT":
        discount = math.floor(Decimal(base_price) * promo.discount_value / 100)
    else:
        discount = int(promo.discount_value)  # whole IDR, checked by the schema
    return min(int(discount), base_price)


def best_promo_discount(plan: Plan, base_price: int, now: datetime) -> int:
    """Of the promos running now, the one giving the largest discount wins."""
    return max(
        (promo_discount(p, base_price) for p in plan.promos if promo_is_running(p, now)),
        default=0,
    )


def prorated_amount(old_price: int, new_price: int, remaining_s: int, period_s: int) -> int:
    """What moving to a dearer plan costs for the rest of the paid time (SPEC section 15).

    max(0, floor((new - old) x remaining / period)) in whole IDR, on integers
    only: a cheaper plan costs 0 (no credit), and more than one period paid
    ahead (remaining > period) counts in full.
    """
    if period_s <= 0:
        raise ValueError("a period lasts more than 0 seconds")
    return max(0, (new_price - old_price) * max(remaining_s, 0) // period_s)


def _aware(moment: datetime) -> datetime:
    # The catalog should send UTC with a zone; a naive date is read as UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
