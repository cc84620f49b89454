"""Sample data served by the catalog-service mock.

The id constants below are FIXED: the order service's tests import them by name
(``from mocks.catalog_service.data import PLAN_BASIC_ID``), so never change a
value without changing those tests too.

The payloads are plain dicts already in the wire shape of the real
catalog-service (camelCase keys, ISO 8601 UTC dates, integer IDR), so reading
this file tells you exactly what the order service receives.

Promo and coupon dates are NOT fixed: :func:`build_catalog` places them relative
to a ``now`` given by the app at creation time (active = started 30 days ago,
ends in 30 days). Fixed calendar dates would silently turn "active" data into
"expired" data on some future day and break the suite.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mocks.catalog_service.shapes import (
    Catalog,
    Coupon,
    ImageCategory,
    ImageJson,
    PlanJson,
    PricingJson,
    PromoJson,
    pricing,
    promo,
)

PROVIDER = "DIGITALOCEAN"

# --------------------------------------------------------------------------- plans
# The prefix a1 marks a plan id, b2 an image id, d4 a promo id: easy to spot in logs.

PLAN_BASIC_ID = "a1000000-0000-4000-8000-000000000001"
""""Basic 1GB" (s-1vcpu-1gb): MONTHLY 100000, YEARLY 1000000; one active PERCENT 10 %
promo, plus an expired and an inactive promo that must be ignored."""

PLAN_STANDARD_ID = "a1000000-0000-4000-8000-000000000002"
""""Standard 2GB" (s-1vcpu-2gb): MONTHLY 200000, YEARLY 2000000; two active promos,
PERCENT 5 % and FIXED 15000. FIXED wins for MONTHLY (15000 > 10000), PERCENT wins for
YEARLY (100000 > 15000)."""

PLAN_PRO_ID = "a1000000-0000-4000-8000-000000000003"
""""Pro 4GB" (s-2vcpu-4gb): MONTHLY 350000 only (its YEARLY pricing is isActive false),
no promos; prices are sent as JSON floats with an integral value (350000.0)."""

PLAN_INACTIVE_ID = "a1000000-0000-4000-8000-000000000004"
"""A plan with isActive false: ordering it must be refused."""

PLAN_BAD_PRICE_ID = "a1000000-0000-4000-8000-000000000005"
"""An active plan whose MONTHLY price is 100000.5: the order service must treat a
non-integral IDR price as a catalog fault."""

PLAN_NO_DISPLAY_NAME_ID = "a1000000-0000-4000-8000-000000000006"
"""An active plan with displayName null and name "nodisplay-plan": the order service
must fall back to the name."""

PLAN_IDS: tuple[str, ...] = (
    PLAN_BASIC_ID,
    PLAN_STANDARD_ID,
    PLAN_PRO_ID,
    PLAN_INACTIVE_ID,
    PLAN_BAD_PRICE_ID,
    PLAN_NO_DISPLAY_NAME_ID,
)

# v1.2 plan changes (SPEC section 15). Every active plan's providerSizeSlug is a size
# of the fake DigitalOcean's catalogue with the same disk (diskGb == the size's disk),
# and Basic, Standard, Mini, CPU and Business all have MONTHLY and YEARLY prices, so
# any of them can move to any other: Basic -> Standard grows the disk (25 -> 50 GB).

PLAN_MINI_ID = "a1000000-0000-4000-8000-000000000007"
""""Mini 512MB" (s-1vcpu-512mb-10gb, 10 GB): MONTHLY 60000, YEARLY 600000, no promos.
Less disk than Basic: Basic -> Mini is refused (DISK_TOO_SMALL)."""

PLAN_CPU_ID = "a1000000-0000-4000-8000-000000000008"
""""CPU 2 vCPU 4GB" (c-2, 25 GB): MONTHLY 250000, YEARLY 2500000, no promos. The same
disk as Basic with more CPU and RAM: Basic -> CPU is a CPU/RAM-only resize (disk false)."""

PLAN_BUSINESS_ID = "a1000000-0000-4000-8000-000000000009"
""""Business 8GB" (s-4vcpu-8gb, 160 GB): MONTHLY 500000, YEARLY 5000000, no promos.
The fake DigitalOcean does not offer s-4vcpu-8gb in blr1 (SIZE_NOT_IN_REGION there)."""

#: The plans added for plan changes; not in PLAN_IDS, whose six plans tests count.
RESIZE_PLAN_IDS: tuple[str, ...] = (PLAN_MINI_ID, PLAN_CPU_ID, PLAN_BUSINESS_ID)

# -------------------------------------------------------------------------- images

IMAGE_UBUNTU_ID = "b2000000-0000-4000-8000-000000000001"
"""Ubuntu 22.04 LTS (ubuntu-22-04-x64, OS), allowed by every active plan."""

IMAGE_DEBIAN_ID = "b2000000-0000-4000-8000-000000000002"
"""Debian 12 (debian-12-x64, OS)."""

IMAGE_DOCKER_ID = "b2000000-0000-4000-8000-000000000003"
"""Docker on Ubuntu 20.04 (docker-20-04, APP): a one-click app image."""

IMAGE_INACTIVE_ID = "b2000000-0000-4000-8000-000000000004"
"""CentOS 7 (centos-7-x64), isActive false but still in Basic/Standard/Pro's
allowedImageIds, so "allowed yet inactive" can be tested."""

IMAGE_NOT_ALLOWED_ID = "b2000000-0000-4000-8000-000000000005"
"""Fedora 39 (fedora-39-x64), active but in no plan's allowedImageIds."""

IMAGE_IDS: tuple[str, ...] = (
    IMAGE_UBUNTU_ID,
    IMAGE_DEBIAN_ID,
    IMAGE_DOCKER_ID,
    IMAGE_INACTIVE_ID,
    IMAGE_NOT_ALLOWED_ID,
)

# -------------------------------------------------------------------------- promos

PROMO_BASIC_PERCENT_ID = "d4000000-0000-4000-8000-000000000001"
"""Basic 1GB: active PERCENT 10 %."""
PROMO_BASIC_EXPIRED_ID = "d4000000-0000-4000-8000-000000000002"
"""Basic 1GB: PERCENT 50 %, ended 30 days ago (must be ignored)."""
PROMO_BASIC_INACTIVE_ID = "d4000000-0000-4000-8000-000000000003"
"""Basic 1GB: PERCENT 90 %, within its dates but isActive false (must be ignored)."""
PROMO_STANDARD_PERCENT_ID = "d4000000-0000-4000-8000-000000000004"
"""Standard 2GB: active PERCENT 5 %."""
PROMO_STANDARD_FIXED_ID = "d4000000-0000-4000-8000-000000000005"
"""Standard 2GB: active FIXED 15000."""

# ------------------------------------------------------------------------- coupons
# Each failing coupon fails for exactly ONE reason, so the check order in the app
# never decides which reason a test sees.

COUPON_CODES: tuple[str, ...] = (
    "HEMAT20",  # valid, PERCENT 20, no cap
    "FLAT50K",  # valid, FIXED 50000
    "BIGFIXED",  # valid, FIXED 5000000: larger than any price (finalPrice clamps to 0)
    "CAP25K",  # valid, PERCENT 50 capped by maxDiscount 25000
    "EXPIRED10",  # EXPIRED: ended yesterday
    "NOTYET",  # BEFORE_START: starts in 30 days
    "DISABLED",  # INACTIVE
    "SOLDOUT",  # LIMIT_REACHED: usedCount == usageLimit
    "MIN1M",  # MIN_AMOUNT: minAmount 1000000
    "PROONLY",  # NOT_APPLICABLE unless planId == PLAN_PRO_ID
)


# ------------------------------------------------------------------------ builders


# Basic, Standard and Pro allow the inactive image on purpose (see IMAGE_INACTIVE_ID).
_MAIN_IMAGES = [IMAGE_UBUNTU_ID, IMAGE_DEBIAN_ID, IMAGE_DOCKER_ID, IMAGE_INACTIVE_ID]


def _plan(
    plan_id: str,
    name: str,
    display_name: str | None,
    size: tuple[str, int, int, int, int | float],
    pricings: list[PricingJson],
    promos: list[PromoJson],
    *,
    is_active: bool = True,
    allowed_images: list[str] | None = None,
) -> PlanJson:
    """``size`` is (providerSizeSlug, cpu, memoryMb, diskGb, bandwidthTb)."""
    slug, cpu, memory_mb, disk_gb, bandwidth_tb = size
    memory = f"{memory_mb // 1024} GB" if memory_mb >= 1024 else f"{memory_mb} MB"
    return {
        "id": plan_id,
        "name": name,
        "displayName": display_name,
        "description": f"{cpu} vCPU, {memory} RAM, {disk_gb} GB SSD",
        "cpu": cpu,
        "memoryMb": memory_mb,
        "diskGb": disk_gb,
        "bandwidthTb": bandwidth_tb,
        "provider": PROVIDER,
        "providerSizeSlug": slug,
        "isActive": is_active,
        "allowedImageIds": list(allowed_images if allowed_images is not None else _MAIN_IMAGES),
        "pricings": pricings,
        "promos": promos,
    }


def _build_plans(now: datetime) -> list[PlanJson]:
    started, ends = now - timedelta(days=30), now + timedelta(days=30)
    long_ago, ended = now - timedelta(days=90), now - timedelta(days=30)
    basic = _plan(
        PLAN_BASIC_ID,
        "basic-1gb",
        "Basic 1GB",
        ("s-1vcpu-1gb", 1, 1024, 25, 1),
        [
            pricing(PLAN_BASIC_ID, "MONTHLY", 100000, 60000),
            pricing(PLAN_BASIC_ID, "YEARLY", 1000000, 720000),
        ],
        [
            promo(PROMO_BASIC_PERCENT_ID, "Diskon 10%", "PERCENT", 10, started, ends),
            promo(PROMO_BASIC_EXPIRED_ID, "Flash sale (ended)", "PERCENT", 50, long_ago, ended),
            promo(
                PROMO_BASIC_INACTIVE_ID,
                "Disabled promo",
                "PERCENT",
                90,
                started,
                ends,
                is_active=False,
            ),
        ],
    )
    standard = _plan(
        PLAN_STANDARD_ID,
        "standard-2gb",
        "Standard 2GB",
        ("s-1vcpu-2gb", 1, 2048, 50, 2),
        [
            pricing(PLAN_STANDARD_ID, "MONTHLY", 200000, 120000),
            pricing(PLAN_STANDARD_ID, "YEARLY", 2000000, 1440000),
        ],
        [
            promo(PROMO_STANDARD_PERCENT_ID, "Hemat 5%", "PERCENT", 5, started, ends),
            promo(PROMO_STANDARD_FIXED_ID, "Potongan 15rb", "FIXED", 15000, started, ends),
        ],
    )
    pro = _plan(
        PLAN_PRO_ID,
        "pro-4gb",
        "Pro 4GB",
        ("s-2vcpu-4gb", 2, 4096, 80, 4),
        [
            # Floats on purpose: some catalog builds serialise DECIMAL columns this way.
            pricing(PLAN_PRO_ID, "MONTHLY", 350000.0, 240000.0),
            pricing(PLAN_PRO_ID, "YEARLY", 3500000.0, 2880000.0, is_active=False),
        ],
        [],
    )
    inactive = _plan(
        PLAN_INACTIVE_ID,
        "legacy-1gb",
        "Legacy 1GB (discontinued)",
        ("s-1vcpu-1gb", 1, 1024, 25, 1),
        [pricing(PLAN_INACTIVE_ID, "MONTHLY", 80000, 60000)],
        [],
        is_active=False,
    )
    bad_price = _plan(
        PLAN_BAD_PRICE_ID,
        "bad-price-1gb",
        "Bad Price 1GB",
        ("s-1vcpu-1gb", 1, 1024, 25, 1),
        [pricing(PLAN_BAD_PRICE_ID, "MONTHLY", 100000.5, 60000)],
        [],
        allowed_images=[IMAGE_UBUNTU_ID, IMAGE_DEBIAN_ID],
    )
    no_display_name = _plan(
        PLAN_NO_DISPLAY_NAME_ID,
        "nodisplay-plan",
        None,
        ("s-1vcpu-1gb", 1, 1024, 25, 1),
        [pricing(PLAN_NO_DISPLAY_NAME_ID, "MONTHLY", 90000, 60000)],
        [],
        allowed_images=[IMAGE_UBUNTU_ID, IMAGE_DEBIAN_ID],
    )
    return [basic, standard, pro, inactive, bad_price, no_display_name, *_resize_plans()]


def _resize_plans() -> list[PlanJson]:
    """The plans of RESIZE_PLAN_IDS: MONTHLY and YEARLY (10 months' price) like Basic."""
    sizes = [
        (PLAN_MINI_ID, "mini-512mb", "Mini 512MB", ("s-1vcpu-512mb-10gb", 1, 512, 10, 0.5), 60000),
        (PLAN_CPU_ID, "cpu-2vcpu-4gb", "CPU 2 vCPU 4GB", ("c-2", 2, 4096, 25, 4), 250000),
        (
            PLAN_BUSINESS_ID,
            "business-8gb",
            "Business 8GB",
            ("s-4vcpu-8gb", 4, 8192, 160, 5),
            500000,
        ),
    ]
    return [
        _plan(
            plan_id,
            name,
            display_name,
            size,
            [
                pricing(plan_id, "MONTHLY", monthly, monthly * 6 // 10),
                pricing(plan_id, "YEARLY", monthly * 10, monthly * 72 // 10),
            ],
            [],
        )
        for plan_id, name, display_name, size, monthly in sizes
    ]


def _image(
    image_id: str,
    slug: str,
    display_name: str,
    category: ImageCategory,
    version: str,
    *,
    is_active: bool = True,
) -> ImageJson:
    return {
        "id": image_id,
        "provider": PROVIDER,
        "providerSlug": slug,
        "displayName": display_name,
        "description": f"{display_name} ({slug})",
        "category": category,
        "version": version,
        "isActive": is_active,
    }


def _build_images() -> list[ImageJson]:
    return [
        _image(IMAGE_UBUNTU_ID, "ubuntu-22-04-x64", "Ubuntu 22.04 LTS", "OS", "22.04"),
        _image(IMAGE_DEBIAN_ID, "debian-12-x64", "Debian 12", "OS", "12"),
        _image(IMAGE_DOCKER_ID, "docker-20-04", "Docker on Ubuntu 20.04", "APP", "20.10"),
        _image(IMAGE_INACTIVE_ID, "centos-7-x64", "CentOS 7", "OS", "7", is_active=False),
        _image(IMAGE_NOT_ALLOWED_ID, "fedora-39-x64", "Fedora 39", "OS", "39"),
    ]


def _build_coupons(now: datetime) -> list[Coupon]:
    started, ends = now - timedelta(days=30), now + timedelta(days=30)
    return [
        Coupon("HEMAT20", "Hemat 20%", "PERCENT", 20, start=started, end=ends),
        Coupon("FLAT50K", "Potongan 50rb", "FIXED", 50000, start=started, end=ends),
        Coupon("BIGFIXED", "Potongan 5jt", "FIXED", 5000000, start=started, end=ends),
        Coupon("CAP25K", "Diskon 50% maks 25rb", "PERCENT", 50, max_discount=25000),
        Coupon(
            "EXPIRED10",
            "Expired 10%",
            "PERCENT",
            10,
            start=now - timedelta(days=60),
            end=now - timedelta(days=1),
        ),
        Coupon("NOTYET", "Not yet 10%", "PERCENT", 10, start=now + timedelta(days=30), end=None),
        Coupon("DISABLED", "Disabled 10%", "PERCENT", 10, is_active=False),
        Coupon("SOLDOUT", "Sold out 10%", "PERCENT", 10, usage_limit=100, used_count=100),
        Coupon("MIN1M", "10% for orders >= 1jt", "PERCENT", 10, min_amount=1000000),
        Coupon("PROONLY", "Pro only 25rb", "FIXED", 25000, plan_ids=frozenset({PLAN_PRO_ID})),
    ]


def build_catalog(now: datetime | None = None) -> Catalog:
    """Fresh catalog whose promo/coupon dates are relative to ``now`` (default: the clock)."""
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    return Catalog(
        plans={plan["id"]: plan for plan in _build_plans(moment)},
        images={image["id"]: image for image in _build_images()},
        coupons={coupon.code.upper(): coupon for coupon in _build_coupons(moment)},
    )
