"""Live pricing against catalog-service, shared by orders and renewals (SPEC sections 6, 9).

`orders/pricing.py` holds the pure rules; this module asks catalog for the
plan (and image) and the coupon and turns the answers into a `Quote`, or
into the SPEC's 400s. Nothing is cached: every order and renewal asks
catalog afresh.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from order_service.catalog.client import CatalogClient
from order_service.catalog.schemas import Image, Plan
from order_service.errors import InvalidCoupon, InvalidDuration, InvalidImage, InvalidPlan
from order_service.orders.pricing import Quote, base_price_for, best_promo_discount
from order_service.orders.states import Duration


async def fetch_plan_and_image(
    catalog: CatalogClient, plan_id: str, image_id: str
) -> tuple[Plan, Image]:
    """Fetch both at once; an invalid plan is reported before an invalid image."""
    plan_result, image_result = await asyncio.gather(
        catalog.get_plan(plan_id), catalog.get_image(image_id), return_exceptions=True
    )
    for result in (plan_result, image_result):
        if isinstance(result, BaseException):  # CatalogUnavailable, or a bug
            raise result
    assert not isinstance(plan_result, BaseException)
    assert not isinstance(image_result, BaseException)
    if plan_result is None or not plan_result.is_active:
        raise InvalidPlan(details={"planId": plan_id})
    if image_result is None or not image_result.is_active:
        raise InvalidImage(details={"imageId": image_id})
    if image_result.id not in plan_result.allowed_image_ids:
        raise InvalidImage(
            f"Image {image_result.display_name} is not available for plan {plan_result.label}",
            details={"imageId": image_id, "planId": plan_id},
        )
    return plan_result, image_result


async def fetch_active_plan(catalog: CatalogClient, plan_id: str) -> Plan:
    """The plan, or 400 INVALID_PLAN when it is gone or inactive."""
    plan = await catalog.get_plan(plan_id)
    if plan is None or not plan.is_active:
        raise InvalidPlan(details={"planId": plan_id})
    return plan


async def quote(
    catalog: CatalogClient,
    plan: Plan,
    duration: Duration,
    *,
    user_id: str,
    coupon_code: str | None,
    now: datetime,
    periods: int = 1,
) -> Quote:
    """The price of `periods` periods of `duration` now: base x periods, promo, coupon.

    The promo and the coupon apply to the whole basePrice (SPEC section 9);
    the coupon is validated with `amount` = the price after the promo.
    """
    unit_price = base_price_for(plan, duration)
    if unit_price is None:
        raise InvalidDuration(
            f"Plan {plan.label} has no active price for {duration.value}",
            details={"duration": duration.value},
        )
    base_price = unit_price * periods
    result = Quote(base_price, best_promo_discount(plan, base_price, now))
    if coupon_code is not None:
        result = await apply_coupon(catalog, result, plan, user_id, coupon_code)
    return result


async def apply_coupon(
    catalog: CatalogClient, quote: Quote, plan: Plan, user_id: str, code: str
) -> Quote:
    result = await catalog.validate_coupon(
        code=code, plan_id=plan.id, user_id=user_id, amount=quote.price_after_promo
    )
    if not result.valid:
        raise InvalidCoupon(
            f"Coupon {code} cannot be applied", details={"reason": result.reason or "UNKNOWN"}
        )
    assert result.discount_amount is not None
    coupon_code = result.coupon.code if result.coupon is not None else code
    return Quote(quote.base_price, quote.promo_discount, coupon_code, result.discount_amount)
