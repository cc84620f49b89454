"""What a provisioning worker carries: its settings, the task as it knows it, the names it gives.

Plain data, kept apart from the worker's logic (`provisioner.py`) so each
stays small; `from_row` and `droplet_values` are the two ends of a task row.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import RowMapping

from order_service.orders.states import Access
from order_service.provisioning.digitalocean import Droplet

# Not "order-…": that prefix is reserved for the per-order tag.
COHORT_PREFIX = "vps-batch-"


@dataclass(frozen=True)
class ProvisionerConfig:
    region: str
    poll_interval_s: float
    max_attempts: int
    lease_s: float = 30.0
    create_retry_max_s: float = 30.0
    # How long a task without room (or whose account refuses its token) waits
    # before it looks again by itself; a freed slot or a healthy account wakes
    # it sooner (accounts/).
    wait_retry_s: float = 60.0

    @property
    def settle_s(self) -> float:
        """How long after a possibly-sent create a lookup by tag is trusted to see it."""
        return min(3.0, 2 * self.poll_interval_s)

    @property
    def not_found_grace_s(self) -> float:
        """The least time a droplet must stay unseen before it counts as gone."""
        return min(10.0, max(3.0, 10 * self.poll_interval_s))

    @property
    def create_retry_initial_s(self) -> float:
        return min(1.0, self.poll_interval_s)

    @property
    def deadline(self) -> timedelta:
        return timedelta(seconds=self.poll_interval_s * self.max_attempts)


def droplet_name(order_id: uuid.UUID, hostname: str | None = None) -> str:
    """The order's hostname when it has one (SPEC section 14), else vps-<first 8 of id>."""
    return hostname or f"vps-{str(order_id)[:8]}"


@dataclass(frozen=True)
class ServerSpec:
    """What the create takes from the order: the name, the keys, the first access."""

    name: str
    # The order's copy of its keys: [{"name", "fingerprint", "publicKey"}].
    ssh_keys: tuple[Mapping[str, Any], ...]
    # A PASSWORD order: a first-access password goes in the create's user_data. Orders
    # from before v1.2 (access null) are created as they were then, without one.
    wants_password: bool

    @classmethod
    def from_order(cls, order_id: uuid.UUID, row: Mapping[str, Any]) -> ServerSpec:
        return cls(
            name=droplet_name(order_id, row["hostname"]),
            ssh_keys=tuple(row["ssh_keys"] or ()),
            wants_password=row["access"] == Access.PASSWORD.value,
        )


def cohort_tag(moment: datetime) -> str:
    """Droplets requested in the same hour share a tag, listed in one go while in flight."""
    return f"{COHORT_PREFIX}{moment.astimezone(UTC):%Y%m%d%H}"


@dataclass
class Work:
    """What a worker knows of its task; mirrors the row, kept in step with every write."""

    id: uuid.UUID
    order_id: uuid.UUID
    size: str
    image: str
    region: str
    account_id: uuid.UUID | None
    error_code: str | None
    droplet_id: int | None
    create_action_id: int | None
    create_intent_at: datetime | None
    requested_at: datetime | None
    tags: list[str] | None
    attempts: int
    not_found: int
    droplet_status: str | None = None
    unavailable: int = 0
    first_not_found_at: datetime | None = None
    # Droplets this order had before a retry (gone or destroyed): a listing
    # by tag may still show them for a while; they are never adopted.
    replaced: set[int] = field(default_factory=set)
    # The droplet's values as this worker last wrote them (None: not yet).
    written: dict[str, Any] | None = None
    # What the create takes from the order, read once by the worker that creates.
    server: ServerSpec | None = None

    @classmethod
    def from_row(cls, row: RowMapping) -> Work:
        return cls(
            id=row["id"],
            order_id=row["order_id"],
            size=row["do_size"],
            image=row["do_image"],
            region=row["do_region"],
            account_id=row["do_account_id"],
            error_code=row["error_code"],
            droplet_id=row["droplet_id"],
            create_action_id=row["create_action_id"],
            create_intent_at=row["create_intent_at"],
            requested_at=row["requested_at"],
            tags=row["droplet_tags"],
            attempts=row["attempts"] or 0,
            not_found=row["not_found_count"] or 0,
            droplet_status=row["droplet_status"],
        )

    @property
    def cohort(self) -> str | None:
        return next((t for t in self.tags or () if t.startswith(COHORT_PREFIX)), None)


def droplet_values(droplet: Droplet) -> dict[str, Any]:
    return {
        "droplet_id": droplet.id,
        "droplet_name": droplet.name,
        "droplet_status": droplet.status,
        "ipv4_public": droplet.ipv4_public,
        "ipv4_private": droplet.ipv4_private,
        "droplet_tags": list(droplet.tags),
        "droplet_created_at": droplet.created_at,
    }
