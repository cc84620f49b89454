"""Tables of the order domain: orders, their items, history and idempotency keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from order_service.db import Base, PortableJSON, UTCDateTime, utcnow


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[str] = mapped_column(String(255))
    plan_id: Mapped[str] = mapped_column(String(64))
    plan_name: Mapped[str] = mapped_column(String(255))
    image_id: Mapped[str] = mapped_column(String(64))
    image_name: Mapped[str] = mapped_column(String(255))
    duration: Mapped[str] = mapped_column(String(16))
    # Money is whole IDR; BigInteger because a yearly price times a multiplier
    # can outgrow 32 bits.
    base_price: Mapped[int] = mapped_column(BigInteger)
    promo_discount: Mapped[int] = mapped_column(BigInteger, default=0)
    coupon_code: Mapped[str | None] = mapped_column(String(64))
    coupon_discount: Mapped[int] = mapped_column(BigInteger, default=0)
    final_price: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="IDR")
    status: Mapped[str] = mapped_column(String(32))
    # Snapshotted at order time for the provisioner.
    do_size_slug: Mapped[str] = mapped_column(String(64))
    do_image_slug: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # --- v1.1: the billing period and the lifecycle (SPEC section 9) ---
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    suspension_reason: Mapped[str | None] = mapped_column(String(16))
    terminated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    termination_reason: Mapped[str | None] = mapped_column(String(32))
    cancel_at_period_end: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # When the next EXPIRING reminder of this period is due (null: none left);
    # expires_at - next_reminder_at is its threshold. Set with the period.
    next_reminder_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # --- v1.2: the customer's server (SPEC section 14) ---
    # Lower-case host name, the droplet's name (null: vps-<first 8 of the id>).
    hostname: Mapped[str | None] = mapped_column(String(253))
    # Where every droplet of the order goes. Null only on rows written by tools
    # that predate v1.2; read as DIGITALOCEAN_DEFAULT_REGION.
    region: Mapped[str | None] = mapped_column(String(32))
    # SSH_KEYS or PASSWORD; null: ordered before v1.2, when the service gave no first
    # access of its own (DO e-mailed a root password to the account's owner).
    access: Mapped[str | None] = mapped_column(String(16))
    # The chosen keys as they were at order time: [{"name", "fingerprint", "publicKey"}].
    ssh_keys: Mapped[list[dict[str, Any]] | None] = mapped_column(PortableJSON)
    # When the order last moved to another plan (SPEC section 15).
    plan_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # --- v1.2: plan changes and renewals that open themselves (SPEC sections 9, 15) ---
    # The droplet's disk in GB as the last resize left it (DO never shrinks a disk, and a
    # CPU/RAM-only resize keeps it): null until a resize, meaning the plan's diskGb.
    disk_gb: Mapped[int | None] = mapped_column(Integer)
    # Rule 6 (SPEC section 9, renewals that open themselves): the expiresAt of the
    # period whose next renewal the service has yet to open; null once it opened it,
    # so a renewal canceled afterwards is not opened again in this period. Every
    # writer of expires_at sets it too (a new period is invoiced in time), like
    # next_reminder_at; due when renewal_due_at - now <= RENEWAL_INVOICE_LEAD.
    renewal_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        # A user's orders newest first, optionally by status.
        Index("ix_orders_user_created", "user_id", "created_at"),
        Index("ix_orders_user_status_created", "user_id", "status", "created_at"),
        # Ops' list: all orders newest first, optionally by status.
        Index("ix_orders_created", "created_at"),
        Index("ix_orders_status_created", "status", "created_at"),
        # The lifecycle scan touches only the rows that are due: each rule of
        # SPEC section 9 reads one of these by status and the time it waits on.
        Index("ix_orders_status_expires", "status", "expires_at"),
        Index("ix_orders_status_next_reminder", "status", "next_reminder_at"),
        Index("ix_orders_status_suspended", "status", "suspended_at"),
        Index("ix_orders_status_renewal_due", "status", "renewal_due_at"),
    )


class OrderItem(Base):
    __tablename__ = "order_items"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    order_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    item_type: Mapped[str] = mapped_column(String(16))
    reference_id: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    unit_price: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    total_price: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StatusHistory(Base):
    """Append-only: every status change and payment event of an order."""

    __tablename__ = "status_history"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("orders.id", ondelete="CASCADE"))
    previous_status: Mapped[str | None] = mapped_column(String(32))
    new_status: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(300))
    reason: Mapped[str | None] = mapped_column(Text)
    # "metadata" is reserved on declarative classes; the column keeps the SPEC name.
    details: Mapped[dict[str, Any] | None] = mapped_column("metadata", PortableJSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_status_history_order_created", "order_id", "created_at"),)


class IdempotencyKey(Base):
    """A user's `Idempotency-Key` on POST /orders and the response it produced."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    # IN_PROGRESS while the first request runs, then COMPLETED with its response.
    state: Mapped[str] = mapped_column(String(16))
    response_status: Mapped[int | None] = mapped_column(Integer)
    # Plain JSON, not JSONB: PostgreSQL keeps `json` text as written, while JSONB
    # reorders keys, and a replay must be byte-identical to the first response.
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    locked_until: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
