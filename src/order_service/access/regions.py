"""Where a customer's server may go (SPEC section 14): DO's regions for a plan's size.

DO's lists come from `accounts/do_catalog.py` (kept DIGITALOCEAN_CATALOG_TTL, the
last copy while DO is down, `503 DIGITALOCEAN_UNAVAILABLE` when never fetched),
limited to DIGITALOCEAN_REGIONS when set. An order that names no region takes
DIGITALOCEAN_DEFAULT_REGION and never asks DO.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from order_service.accounts.do_catalog import DoCatalog
from order_service.catalog.client import CatalogClient
from order_service.catalog.schemas import Plan
from order_service.errors import InvalidRegion
from order_service.orders import quoting

__all__ = ["RegionRules", "chosen_region", "regions_for_plan"]


@dataclass(frozen=True)
class RegionRules:
    """The region settings and DO's lists, as the API process holds them."""

    do_catalog: DoCatalog
    default: str
    allowed: Sequence[str] = ()


async def _offered(rules: RegionRules, size_slug: str) -> list[dict[str, Any]]:
    offer = await rules.do_catalog.offer()
    return [
        {"slug": region.slug, "name": region.name}
        for region in offer.regions_for(size_slug, rules.allowed)
    ]


async def regions_for_plan(
    catalog: CatalogClient, rules: RegionRules, plan_id: str
) -> dict[str, Any]:
    """`{"data": [{"slug", "name"}]}` sorted by slug: 400 INVALID_PLAN for an unknown or
    inactive plan, 503 CATALOG_SERVICE_UNAVAILABLE or DIGITALOCEAN_UNAVAILABLE."""
    plan = await quoting.fetch_active_plan(catalog, plan_id)
    return {"data": await _offered(rules, plan.provider_size_slug)}


async def chosen_region(rules: RegionRules, plan: Plan, requested: str | None) -> str:
    """The order's region: the requested one if DO offers the plan's size there (and
    DIGITALOCEAN_REGIONS allows it), else 400 INVALID_REGION; none requested: the
    default, without asking DO."""
    if requested is None:
        return rules.default
    offered = await _offered(rules, plan.provider_size_slug)
    if not any(region["slug"] == requested for region in offered):
        raise InvalidRegion(
            f"Region {requested} is not offered for this plan; "
            "GET /api/v1/regions?planId= lists the ones that are",
            details={"region": requested, "planId": plan.id},
        )
    return requested
