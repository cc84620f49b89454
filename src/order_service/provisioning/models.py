"""The provisioning task (one per order, the durable hand-off to the provisioner)
and the DigitalOcean budgets (one per account) that all processes on one database share."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from order_service.db import Base, PortableJSON, UTCDateTime, utcnow

#: A task holds a slot in its account while it is unfinished (a create in flight, a
#: droplet being followed) or while its droplet lives (DO counts it against the
#: account's droplet_limit, errored ones too) - until DO answered 404 for it.
SLOT_HELD_SQL = (
    "do_account_id IS NOT NULL AND (status IN ('PENDING', 'IN_PROGRESS') OR "
    "(droplet_id IS NOT NULL AND coalesce(droplet_status, 'new') NOT IN ('destroyed', 'gone')))"
)


class ProvisioningTask(Base):
    __tablename__ = "provisioning_tasks"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    order_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("orders.id", ondelete="CASCADE"), unique=True
    )
    status: Mapped[str] = mapped_column(String(16))
    do_region: Mapped[str] = mapped_column(String(32))
    do_size: Mapped[str] = mapped_column(String(64))
    do_image: Mapped[str] = mapped_column(String(128))
    # v1.2: the account the droplet is placed in (SPEC section 13); null until a slot
    # is taken. Every DO call for the droplet uses this account's token and budget.
    do_account_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("do_accounts.id", ondelete="SET NULL")
    )
    droplet_id: Mapped[int | None] = mapped_column(BigInteger)
    droplet_name: Mapped[str | None] = mapped_column(String(255))
    droplet_status: Mapped[str | None] = mapped_column(String(32))
    ipv4_public: Mapped[str | None] = mapped_column(String(45))
    ipv4_private: Mapped[str | None] = mapped_column(String(45))
    droplet_tags: Mapped[list[str] | None] = mapped_column(PortableJSON)
    droplet_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    # Checks made against DigitalOcean in the current run of the task.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # --- provisioner bookkeeping (not part of the API) ---
    # When the droplet was (first) requested in the current run: the deadline
    # counts from here.
    requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Written *before* POST /v2/droplets is sent: if it is set and no droplet id
    # is known, a create may have reached DO, so look the droplet up by tag.
    create_intent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    create_action_id: Mapped[int | None] = mapped_column(BigInteger)
    # Consecutive "not found" answers for the droplet (DO is eventually consistent).
    not_found_count: Mapped[int] = mapped_column(Integer, default=0)
    # The lease: which process works the task, and until when.
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_provisioning_tasks_status_lease", "status", "lease_expires_at"),
        # The slots an account's tasks hold (accounts/placement.py counts them under
        # the account's lock): only live rows are in it, so a count costs what the
        # account holds now, not every droplet it ever had.
        Index(
            "ix_provisioning_tasks_account_slots",
            "do_account_id",
            postgresql_where=text(SLOT_HELD_SQL),
            sqlite_where=text(SLOT_HELD_SQL),
        ),
    )


class DoBudget(Base):
    """One row per account: the lock its grants are taken under, and its shared pause.

    ``paused_until`` is set after a 429 or an exhausted ``ratelimit-remaining``
    seen by any process on that account; no grant of it is made before it
    (database clock). Other accounts are not paused.
    """

    __tablename__ = "do_budget"

    account_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DoBudgetGrant(Base):
    """A slice of DO requests leased by one process (see ``shared_budget``).

    ``count`` tokens may be sent between ``granted_at`` and ``expires_at``; the
    grant counts against a window of length W while ``expires_at + W`` is in the
    future. When the slice is closed, ``count`` drops to the tokens actually sent
    and ``expires_at`` to the last send, which hands the rest back.
    """

    __tablename__ = "do_budget_grants"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    owner: Mapped[str] = mapped_column(String(128))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer)
    # For bulk requests (creates, actions, deletes), which never get the follow-ups'
    # reserve (rate_budget.py).
    bulk: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (Index("ix_do_budget_grants_account_expires", "account_id", "expires_at"),)
