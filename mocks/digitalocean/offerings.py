"""Which region offers which size: GET /v2/regions, GET /v2/sizes and the create/resize check.

The catalogue (``catalogue.py``) says what exists; two knobs of the config say
what is offered: ``unavailable_regions`` (listed with ``available: false`` and
no sizes, and offering nothing) and ``sizes_missing`` (size -> regions that do
not offer it). A slug the catalogue does not know is never refused here, so
clients using other slugs keep working as before.
"""

from __future__ import annotations

from typing import Any

from mocks.digitalocean.catalogue import (
    REGION_SLUGS,
    SIZE_SLUGS,
    region_json,
    size_offer,
)
from mocks.digitalocean.config import FakeConfig
from mocks.digitalocean.models import ApiError, unprocessable
from mocks.digitalocean.paging import page_of

SIZE_NOT_IN_REGION_MESSAGE = "Size is not available in this region."
REGION_UNAVAILABLE_MESSAGE = (
    "The region you specified is not available for Droplet creation; please choose another."
)


def offers(config: FakeConfig, region: str, size: str) -> bool:
    """Whether a known, available ``region`` offers the known ``size``."""
    if region in config.unavailable_regions:
        return False
    return region not in config.sizes_missing.get(size, ())


def refusal(config: FakeConfig, region: str, size: str) -> ApiError | None:
    """The 422 a create or resize gets for this pair, or None (also for unknown slugs)."""
    if region not in REGION_SLUGS or size not in SIZE_SLUGS:
        return None
    if region in config.unavailable_regions:
        return unprocessable(REGION_UNAVAILABLE_MESSAGE)
    if not offers(config, region, size):
        return unprocessable(SIZE_NOT_IN_REGION_MESSAGE)
    return None


def regions(config: FakeConfig) -> list[dict[str, Any]]:
    """Every known region, in catalogue order, as GET /v2/regions shows it."""
    listed = []
    for slug in REGION_SLUGS:
        region = region_json(slug)
        region["available"] = slug not in config.unavailable_regions
        region["sizes"] = [size for size in SIZE_SLUGS if offers(config, slug, size)]
        listed.append(region)
    return listed


def sizes(config: FakeConfig) -> list[dict[str, Any]]:
    """Every known size, in catalogue order, as GET /v2/sizes shows it."""
    listed = []
    for slug in SIZE_SLUGS:
        size = size_offer(slug)
        size["regions"] = [region for region in REGION_SLUGS if offers(config, region, slug)]
        size["available"] = bool(size["regions"])
        listed.append(size)
    return listed


def regions_page(config: FakeConfig, *, page: int, per_page: int, base_url: str) -> dict[str, Any]:
    """GET /v2/regions, paged like droplets."""
    url = f"{base_url}/v2/regions"
    return page_of("regions", regions(config), dict, url=url, page=page, per_page=per_page)


def sizes_page(config: FakeConfig, *, page: int, per_page: int, base_url: str) -> dict[str, Any]:
    """GET /v2/sizes, paged like droplets."""
    url = f"{base_url}/v2/sizes"
    return page_of("sizes", sizes(config), dict, url=url, page=page, per_page=per_page)
