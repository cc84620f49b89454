"""The one clock: everything that asks for "now" follows it when a test moves it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from order_service import clock
from order_service.db import utcnow


@pytest.fixture(autouse=True)
def real_time() -> Iterator[None]:
    clock.reset()
    yield
    clock.reset()


def test_now_is_aware_utc_and_close_to_real_time() -> None:
    now = clock.now()
    assert now.tzinfo is UTC
    assert abs((now - datetime.now(UTC)).total_seconds()) < 5


def test_advance_moves_every_reader() -> None:
    before = utcnow()
    clock.advance(timedelta(days=40))
    after = utcnow()
    assert timedelta(days=40) <= after - before < timedelta(days=40, seconds=5)
    assert clock.offset() == timedelta(days=40)


def test_reset_returns_to_real_time() -> None:
    clock.advance(timedelta(days=1))
    clock.reset()
    assert abs((clock.now() - datetime.now(UTC)).total_seconds()) < 5


def test_the_clock_never_moves_back() -> None:
    with pytest.raises(ValueError):
        clock.advance(timedelta(seconds=-1))
