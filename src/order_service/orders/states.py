"""The order state machine of SPEC section 4, as data.

No imports from the rest of the app: this module is the single table every
status change is checked against, and it is tested over every pair.
"""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "PENDING_PAYMENT"
    PAID = "PAID"
    PROVISIONING = "PROVISIONING"
    ACTIVE = "ACTIVE"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    SUSPENDED = "SUSPENDED"
    TERMINATED = "TERMINATED"


class OrderEvent(StrEnum):
    """History entries that record something without changing the status."""

    PAYMENT_FAILED = "PAYMENT_FAILED"
    EXPIRING = "EXPIRING"
    RENEWED = "RENEWED"
    EXPIRY_CHANGED = "EXPIRY_CHANGED"
    CANCEL_SCHEDULED = "CANCEL_SCHEDULED"
    CANCEL_UNSCHEDULED = "CANCEL_UNSCHEDULED"
    # v1.2: no DO account has room (or a healthy token) for the order's droplet yet.
    WAITING_FOR_CAPACITY = "WAITING_FOR_CAPACITY"
    # v1.2: the droplet was resized to another plan (SPEC section 15).
    PLAN_CHANGED = "PLAN_CHANGED"


class SuspensionReason(StrEnum):
    EXPIRED = "EXPIRED"
    ADMIN = "ADMIN"


class TerminationReason(StrEnum):
    EXPIRED = "EXPIRED"
    CANCELED_BY_USER = "CANCELED_BY_USER"
    ADMIN = "ADMIN"


class RenewalStatus(StrEnum):
    PENDING_PAYMENT = "PENDING_PAYMENT"
    PAID = "PAID"
    CANCELED = "CANCELED"


class PlanChangeStatus(StrEnum):
    """A plan change (SPEC section 15): open while PENDING_PAYMENT or PAID (resizing)."""

    PENDING_PAYMENT = "PENDING_PAYMENT"
    PAID = "PAID"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


OPEN_PLAN_CHANGES = frozenset({PlanChangeStatus.PENDING_PAYMENT, PlanChangeStatus.PAID})


class ActionType(StrEnum):
    """Server actions of SPEC section 10; DESTROY and RESIZE are the system's only."""

    REBOOT = "REBOOT"
    SHUTDOWN = "SHUTDOWN"
    POWER_OFF = "POWER_OFF"
    POWER_ON = "POWER_ON"
    REBUILD = "REBUILD"
    DESTROY = "DESTROY"
    # v1.2: a paid plan change (SPEC section 15): shutdown, resize, power on.
    RESIZE = "RESIZE"


# What users and ops may ask for; DESTROY and RESIZE only come from the service itself.
REQUESTABLE_ACTIONS = frozenset(ActionType) - {ActionType.DESTROY, ActionType.RESIZE}


class ActionStatus(StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    # v1.2 (SPEC section 3): ended before anything was sent to DO, e.g. superseded.
    CANCELED = "CANCELED"


UNFINISHED_ACTIONS = frozenset({ActionStatus.PENDING, ActionStatus.IN_PROGRESS})


class Duration(StrEnum):
    MONTHLY = "MONTHLY"
    QUARTERLY = "QUARTERLY"
    SEMI_ANNUAL = "SEMI_ANNUAL"
    ANNUAL = "ANNUAL"


class AccountHealth(StrEnum):
    """A DO account's standing (SPEC section 13)."""

    UNKNOWN = "UNKNOWN"
    HEALTHY = "HEALTHY"
    UNHEALTHY = "UNHEALTHY"


class Access(StrEnum):
    """How the customer first logs in to the server (SPEC section 14)."""

    SSH_KEYS = "SSH_KEYS"
    PASSWORD = "PASSWORD"  # noqa: S105 - the kind of access, not a password


class TaskStatus(StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"


S = OrderStatus

TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING_PAYMENT: frozenset({S.PAID, S.CANCELED}),
    S.PAID: frozenset({S.PROVISIONING}),
    S.PROVISIONING: frozenset({S.ACTIVE, S.FAILED}),
    S.FAILED: frozenset({S.PROVISIONING, S.TERMINATED}),
    S.ACTIVE: frozenset({S.SUSPENDED, S.TERMINATED}),
    S.SUSPENDED: frozenset({S.ACTIVE, S.TERMINATED}),
    S.CANCELED: frozenset(),
    S.TERMINATED: frozenset(),
}

TERMINAL_STATUSES = frozenset(s for s, targets in TRANSITIONS.items() if not targets)


def can_transition(current: OrderStatus, target: OrderStatus) -> bool:
    return target in TRANSITIONS[current]


def sources_of(target: OrderStatus) -> frozenset[OrderStatus]:
    """Every status from which `target` may be reached (for conditional UPDATEs)."""
    return frozenset(source for source, targets in TRANSITIONS.items() if target in targets)
