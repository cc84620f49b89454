"""The provisioner's pure helpers: names, tags, deadline, settle time and backoff."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from order_service.engine import process_identity
from order_service.provisioning.lookup import order_tag
from order_service.provisioning.provisioner import Provisioner
from order_service.provisioning.work import (
    COHORT_PREFIX,
    ProvisionerConfig,
    Work,
    cohort_tag,
    droplet_name,
)
from tests.conftest import make_settings

ORDER_ID = uuid.UUID("00f76fa8-3001-4cfc-9ff8-3b078d993d27")
# DO tag names: letters, digits, colons, dashes and underscores, up to 255 characters.
DO_TAG = re.compile(r"^[A-Za-z0-9:_\-]{1,255}$")
# A droplet name is a hostname.
HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?$")


def config(
    poll_interval_s: float = 5.0, max_attempts: int = 60, **kwargs: float
) -> ProvisionerConfig:
    return ProvisionerConfig(
        region="sgp1", poll_interval_s=poll_interval_s, max_attempts=max_attempts, **kwargs
    )


# ------------------------------------------------------------------ names and tags


def test_droplet_name_is_vps_and_the_first_8_chars_of_the_order_id() -> None:
    assert droplet_name(ORDER_ID) == "vps-00f76fa8"


@pytest.mark.parametrize("order_id", [uuid.uuid4() for _ in range(20)], ids=str)
def test_droplet_name_is_a_valid_hostname(order_id: uuid.UUID) -> None:
    name = droplet_name(order_id)
    assert HOSTNAME.match(name)
    assert name == f"vps-{str(order_id)[:8]}"


def test_order_tag_carries_the_whole_order_id() -> None:
    assert order_tag(ORDER_ID) == "order-00f76fa8-3001-4cfc-9ff8-3b078d993d27"
    assert DO_TAG.match(order_tag(ORDER_ID))
    assert uuid.UUID(order_tag(ORDER_ID).removeprefix("order-")) == ORDER_ID


def test_order_tags_of_different_orders_differ_even_with_the_same_name_prefix() -> None:
    twin = uuid.UUID("00f76fa8-ffff-4fff-8fff-ffffffffffff")
    assert droplet_name(twin) == droplet_name(ORDER_ID)  # names may collide...
    assert order_tag(twin) != order_tag(ORDER_ID)  # ...tags, which find droplets again, never


def test_cohort_tag_is_the_utc_hour() -> None:
    assert cohort_tag(datetime(2030, 1, 2, 3, 59, 59, tzinfo=UTC)) == "vps-batch-2030010203"


def test_cohort_tag_converts_other_zones_to_utc() -> None:
    jakarta = timezone(timedelta(hours=7))
    moment = datetime(2030, 1, 2, 6, 30, tzinfo=jakarta)  # 23:30 UTC the day before
    assert cohort_tag(moment) == "vps-batch-2030010123"
    assert cohort_tag(moment) == cohort_tag(moment.astimezone(UTC))


def test_one_hour_shares_a_cohort_the_next_hour_starts_another() -> None:
    start = datetime(2030, 6, 1, 10, 0, tzinfo=UTC)
    assert cohort_tag(start) == cohort_tag(start + timedelta(minutes=59, seconds=59))
    assert cohort_tag(start) != cohort_tag(start + timedelta(hours=1))
    assert cohort_tag(start) != cohort_tag(start - timedelta(microseconds=1))


def test_cohort_tag_never_looks_like_an_order_tag() -> None:
    # "order-…" is how a droplet is found again by its order; a cohort tag with
    # that prefix would make a whole hour of droplets look like one order's.
    tag = cohort_tag(datetime.now(UTC))
    assert tag.startswith(COHORT_PREFIX) and COHORT_PREFIX == "vps-batch-"
    assert not tag.startswith("order-")
    assert DO_TAG.match(tag)


def test_a_worker_finds_its_cohort_among_its_tags() -> None:
    def work(tags: list[str] | None) -> Work:
        return Work(
            id=uuid.uuid4(),
            order_id=ORDER_ID,
            size="s-1vcpu-1gb",
            image="ubuntu-22-04-x64",
            region="sgp1",
            account_id=None,
            error_code=None,
            droplet_id=1,
            create_action_id=None,
            create_intent_at=None,
            requested_at=None,
            tags=tags,
            attempts=0,
            not_found=0,
        )

    cohort = cohort_tag(datetime(2030, 1, 1, 0, tzinfo=UTC))
    assert work(["order-service", order_tag(ORDER_ID), cohort]).cohort == cohort
    assert work(["order-service", order_tag(ORDER_ID)]).cohort is None  # adopted, pre-cohort
    assert work(None).cohort is None


def test_process_identity_is_unique_and_fits_the_lease_column() -> None:
    first, second = process_identity(), process_identity()
    assert first != second  # a restarted process with a reused pid is someone new
    assert len(first) <= 128
    host, pid, nonce = first.rsplit(":", 2)
    assert host and pid.isdigit() and re.fullmatch(r"[0-9a-f]{8}", nonce)


# ------------------------------------------------------------------ timing


def test_deadline_is_interval_times_attempts() -> None:
    assert config(5.0, 60).deadline == timedelta(minutes=5)
    assert config(0.05, 200).deadline == timedelta(seconds=10)


def test_deadline_matches_the_settings_it_is_built_from() -> None:
    settings = make_settings(
        "sqlite+aiosqlite:///unused.db",
        provisioning_poll_interval_ms=5000,
        provisioning_max_attempts=60,
    )
    built = config(settings.poll_interval_s, settings.provisioning_max_attempts)
    assert built.deadline.total_seconds() == settings.provisioning_deadline_s == 300


@pytest.mark.parametrize(
    ("interval", "settle"), [(5.0, 3.0), (1.5, 3.0), (1.0, 2.0), (0.05, 0.1), (0.01, 0.02)]
)
def test_settle_time_is_two_intervals_at_most_three_seconds(interval: float, settle: float) -> None:
    assert config(interval).settle_s == pytest.approx(settle)


@pytest.mark.parametrize(("interval", "initial"), [(5.0, 1.0), (1.0, 1.0), (0.2, 0.2)])
def test_create_retry_starts_at_one_interval_at_most_one_second(
    interval: float, initial: float
) -> None:
    assert config(interval).create_retry_initial_s == pytest.approx(initial)


def provisioner(cfg: ProvisionerConfig) -> Provisioner:
    # _backoff needs neither the store nor the client.
    return Provisioner(object(), object(), cfg)  # type: ignore[arg-type]


@pytest.mark.parametrize("failures", range(1, 12))
def test_create_backoff_is_equal_jitter_capped(failures: int) -> None:
    cfg = config(5.0)  # initial 1 s, cap 30 s
    ceiling = min(cfg.create_retry_max_s, cfg.create_retry_initial_s * 2 ** (failures - 1))
    waits = [provisioner(cfg)._backoff(failures) for _ in range(200)]
    assert all(ceiling / 2 <= wait <= ceiling for wait in waits)
    assert len(set(waits)) > 1  # jittered, so a shared outage does not make a thundering herd


def test_create_backoff_grows_then_stops_at_the_cap() -> None:
    cfg = config(5.0, create_retry_max_s=30.0)
    engine = provisioner(cfg)
    lowest = [min(engine._backoff(n) for _ in range(50)) for n in range(1, 9)]
    assert lowest[0] >= 0.5 and max(engine._backoff(1) for _ in range(50)) <= 1.0
    assert lowest[1] >= 1.0 and lowest[2] >= 2.0 and lowest[3] >= 4.0
    assert all(engine._backoff(50) <= 30.0 for _ in range(50))
    assert all(engine._backoff(50) >= 15.0 for _ in range(50))


def test_fast_test_intervals_keep_the_backoff_short() -> None:
    engine = provisioner(config(0.05, create_retry_max_s=30.0))
    assert all(engine._backoff(1) <= 0.05 for _ in range(50))
