"""The transition table of SPEC section 4, checked over every pair of statuses."""

from __future__ import annotations

import itertools

import pytest

from order_service.actions.writer import UNFINISHED
from order_service.orders.states import (
    TERMINAL_STATUSES,
    TRANSITIONS,
    UNFINISHED_ACTIONS,
    ActionStatus,
    OrderStatus,
    can_transition,
    sources_of,
)

S = OrderStatus

# Written out from the SPEC's diagram, independently of the module under test.
ALLOWED = {
    (S.PENDING_PAYMENT, S.PAID),
    (S.PENDING_PAYMENT, S.CANCELED),
    (S.PAID, S.PROVISIONING),
    (S.PROVISIONING, S.ACTIVE),
    (S.PROVISIONING, S.FAILED),
    (S.FAILED, S.PROVISIONING),
    (S.FAILED, S.TERMINATED),
    (S.ACTIVE, S.SUSPENDED),
    (S.ACTIVE, S.TERMINATED),
    (S.SUSPENDED, S.ACTIVE),
    (S.SUSPENDED, S.TERMINATED),
}

ALL_PAIRS = list(itertools.product(OrderStatus, repeat=2))


def test_the_eight_statuses_of_the_spec() -> None:
    assert {s.value for s in OrderStatus} == {
        "PENDING_PAYMENT",
        "PAID",
        "PROVISIONING",
        "ACTIVE",
        "FAILED",
        "CANCELED",
        "SUSPENDED",
        "TERMINATED",
    }


def test_table_covers_every_status() -> None:
    assert set(TRANSITIONS) == set(OrderStatus)


@pytest.mark.parametrize(("current", "target"), ALL_PAIRS, ids=lambda s: s.value)
def test_every_pair(current: OrderStatus, target: OrderStatus) -> None:
    assert can_transition(current, target) is ((current, target) in ALLOWED)


def test_no_status_moves_to_itself() -> None:
    assert not any(can_transition(s, s) for s in OrderStatus)


@pytest.mark.parametrize("target", list(OrderStatus), ids=lambda s: s.value)
def test_sources_of(target: OrderStatus) -> None:
    expected = {source for source, to in ALLOWED if to == target}
    assert sources_of(target) == frozenset(expected)


def test_sources_of_examples() -> None:
    assert sources_of(S.PROVISIONING) == {S.PAID, S.FAILED}
    assert sources_of(S.PAID) == {S.PENDING_PAYMENT}
    assert sources_of(S.CANCELED) == {S.PENDING_PAYMENT}
    assert sources_of(S.PENDING_PAYMENT) == frozenset()


def test_terminal_statuses() -> None:
    assert set(TERMINAL_STATUSES) == {S.CANCELED, S.TERMINATED}
    for status in TERMINAL_STATUSES:
        assert not any(can_transition(status, target) for target in OrderStatus)
    # FAILED is not terminal: an operator may retry it.
    assert S.FAILED not in TERMINAL_STATUSES


def test_canceled_actions_are_finished() -> None:
    # SPEC section 3 (v1.2): an action ended before anything was sent to DO is CANCELED;
    # the engine claims only unfinished actions, so it never works a CANCELED one.
    assert ActionStatus.CANCELED.value == "CANCELED"
    assert ActionStatus.CANCELED not in UNFINISHED_ACTIONS
    assert ActionStatus.CANCELED.value not in UNFINISHED
