"""What moving an order to another plan costs, and whether the server can move (SPEC §15).

Both prices come from the one pricing path of orders and renewals
(`orders/quoting.py`: the plan's active price for the duration and its best
promo, no coupon); the proration is `orders/pricing.prorated_amount`, on
integers only. Whether the target plan can take the server is asked of the
plan (its images, its disk) and of DO's size list for the order's region
(`accounts/do_catalog.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from order_service.accounts.do_catalog import DoCatalog
from order_service.catalog.client import CatalogClient
from order_service.catalog.schemas import Plan
from order_service.errors import (
    OrderStatusConflict,
    PlanChangeNotPossible,
    ServiceSuspended,
    ValidationFailed,
)
from order_service.lifecycle.period import period_seconds, whole_seconds
from order_service.orders import quoting
from order_service.orders.pricing import prorated_amount
from order_service.orders.states import Duration, OrderStatus

DISK_TOO_SMALL = "DISK_TOO_SMALL"
SIZE_NOT_IN_REGION = "SIZE_NOT_IN_REGION"
IMAGE_NOT_ALLOWED = "IMAGE_NOT_ALLOWED"


@dataclass(frozen=True, slots=True)
class Prices:
    """The two plans' prices now, and what the server is moved to."""

    from_plan_id: str
    to_plan_id: str
    to_plan_name: str
    to_size_slug: str
    old_price: int
    new_price: int
    from_disk_gb: int | None
    to_disk_gb: int | None

    @property
    def resize_disk(self) -> bool:
        """DO's `disk: true` only when the new plan has more disk than the droplet now."""
        if self.to_disk_gb is None or self.from_disk_gb is None:
            return False
        return self.to_disk_gb > self.from_disk_gb


@dataclass(frozen=True, slots=True)
class Amount:
    remaining_s: int
    period_s: int
    amount_due: int


def check_changeable(order: Mapping[str, Any], plan_id: str, field_in: str) -> None:
    """The refusals that need no catalog: the order's status and the same plan."""
    status = order["status"]
    if status == OrderStatus.SUSPENDED:
        raise ServiceSuspended(
            "The service is suspended: renew it before changing its plan",
            details={"currentStatus": status},
        )
    if status != OrderStatus.ACTIVE:
        raise OrderStatusConflict(
            f"Order is {status}; only an ACTIVE order can change its plan",
            details={"currentStatus": status},
        )
    if plan_id == order["plan_id"]:
        raise ValidationFailed(
            "The order already has this plan",
            details={
                "fields": [
                    {"field": "planId", "in": field_in, "message": "is the order's own plan"}
                ]
            },
        )


def amount(prices: Prices, expires_at: datetime, duration: str, now: datetime) -> Amount:
    """The price rule of SPEC section 15 at `now`, for a period ending at `expires_at`."""
    remaining = max(0, whole_seconds(expires_at - now))
    period = period_seconds(expires_at, duration)
    return Amount(
        remaining, period, prorated_amount(prices.old_price, prices.new_price, remaining, period)
    )


async def price_change(
    catalog: CatalogClient,
    do_catalog: DoCatalog,
    order: Mapping[str, Any],
    task: Mapping[str, Any] | None,
    plan_id: str,
    now: datetime,
) -> Prices:
    """Both plans priced live, and the refusals that need catalog or DO (400s, 409s)."""
    target, current = await asyncio.gather(
        quoting.fetch_active_plan(catalog, plan_id),
        quoting.fetch_active_plan(catalog, order["plan_id"]),
        return_exceptions=True,
    )
    for result in (target, current):  # the target's trouble is reported first
        if isinstance(result, BaseException):
            raise result
    assert isinstance(target, Plan) and isinstance(current, Plan)
    duration = Duration(order["duration"])
    new = await quoting.quote(
        catalog, target, duration, user_id=order["user_id"], coupon_code=None, now=now
    )
    old = await quoting.quote(
        catalog, current, duration, user_id=order["user_id"], coupon_code=None, now=now
    )
    # What the droplet really has: a resize may have grown it past its plan's disk.
    disk_now = order["disk_gb"] if order["disk_gb"] is not None else current.disk_gb
    await _check_possible(do_catalog, order, task, target, disk_now)
    return Prices(
        from_plan_id=order["plan_id"],
        to_plan_id=target.id,
        to_plan_name=target.label,
        to_size_slug=target.provider_size_slug,
        old_price=old.final_price,
        new_price=new.final_price,
        from_disk_gb=disk_now,
        to_disk_gb=target.disk_gb,
    )


async def _check_possible(
    do_catalog: DoCatalog,
    order: Mapping[str, Any],
    task: Mapping[str, Any] | None,
    target: Plan,
    disk_now: int | None,
) -> None:
    if order["image_id"] not in target.allowed_image_ids:
        raise PlanChangeNotPossible(
            f"Plan {target.label} does not allow the server's image ({order['image_name']})",
            details={"reason": IMAGE_NOT_ALLOWED, "imageId": order["image_id"]},
        )
    if target.disk_gb is not None and disk_now is not None and target.disk_gb < disk_now:
        raise PlanChangeNotPossible(
            f"Plan {target.label} has a {target.disk_gb} GB disk and the server has "
            f"{disk_now} GB: a disk never shrinks",
            details={"reason": DISK_TOO_SMALL, "diskGb": target.disk_gb, "serverDiskGb": disk_now},
        )
    region = task["do_region"] if task is not None else None
    offer = await do_catalog.offer()
    if region is None or not offer.offers(target.provider_size_slug, region):
        raise PlanChangeNotPossible(
            f"DigitalOcean does not offer {target.provider_size_slug} in {region}",
            details={
                "reason": SIZE_NOT_IN_REGION,
                "size": target.provider_size_slug,
                "region": region,
            },
        )
