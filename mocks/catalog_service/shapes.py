"""Wire shapes of the catalog-service mock's data, the catalog one app serves, and the
builders of pricings and promos.

The TypedDicts are the real catalog-service's JSON (camelCase keys, ISO 8601
UTC dates, integer IDR); ``data.py`` builds the sample data in them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, TypedDict

Duration = Literal["MONTHLY", "YEARLY"]
DiscountType = Literal["PERCENT", "FIXED"]
ImageCategory = Literal["OS", "APP"]


class PricingJson(TypedDict):
    id: str
    duration: Duration
    price: int | float  # float only for the deliberately odd Pro / bad-price plans
    cost: int | float
    isActive: bool


class PromoJson(TypedDict):
    id: str
    name: str
    discountType: DiscountType
    discountValue: int
    startDate: str
    endDate: str
    isActive: bool


class PlanJson(TypedDict):
    id: str
    name: str
    displayName: str | None
    description: str | None
    cpu: int
    memoryMb: int
    diskGb: int
    bandwidthTb: int | float
    provider: str
    providerSizeSlug: str
    isActive: bool
    allowedImageIds: list[str]
    pricings: list[PricingJson]
    promos: list[PromoJson]


class ImageJson(TypedDict):
    id: str
    provider: str
    providerSlug: str
    displayName: str
    description: str | None
    category: ImageCategory
    version: str
    isActive: bool


@dataclass(frozen=True)
class Coupon:
    """A coupon's rules. Internal only: the wire shows code/name/discountType/discountValue."""

    code: str
    name: str
    discount_type: DiscountType
    discount_value: int
    is_active: bool = True
    start: datetime | None = None  # None: no lower bound
    end: datetime | None = None  # None: never expires
    usage_limit: int | None = None  # None: unlimited
    used_count: int = 0
    min_amount: int = 0
    max_discount: int | None = None  # cap for PERCENT coupons
    plan_ids: frozenset[str] | None = None  # None: every plan


@dataclass(frozen=True)
class Catalog:
    """Everything one app instance serves; coupons are keyed by UPPER-CASE code."""

    plans: dict[str, PlanJson] = field(default_factory=dict)
    images: dict[str, ImageJson] = field(default_factory=dict)
    coupons: dict[str, Coupon] = field(default_factory=dict)


# ------------------------------------------------------------------------ builders


def iso_utc(moment: datetime) -> str:
    """Format like the real service: second precision, 'Z' suffix."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Pricing ids are derived rather than hand-written: stable across runs and unique per
# (plan, duration), without twelve more constants nobody imports.
_PRICING_NAMESPACE = uuid.UUID("c3000000-0000-4000-8000-000000000000")


def pricing(
    plan_id: str,
    duration: Duration,
    price: int | float,
    cost: int | float,
    *,
    is_active: bool = True,
) -> PricingJson:
    pricing_id = str(uuid.uuid5(_PRICING_NAMESPACE, f"{plan_id}:{duration}"))
    return {
        "id": pricing_id,
        "duration": duration,
        "price": price,
        "cost": cost,
        "isActive": is_active,
    }


def promo(
    promo_id: str,
    name: str,
    discount_type: DiscountType,
    value: int,
    start: datetime,
    end: datetime,
    *,
    is_active: bool = True,
) -> PromoJson:
    return {
        "id": promo_id,
        "name": name,
        "discountType": discount_type,
        "discountValue": value,
        "startDate": iso_utc(start),
        "endDate": iso_utc(end),
        "isActive": is_active,
    }
