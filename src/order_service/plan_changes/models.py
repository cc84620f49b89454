"""The plan_changes table: one row per request to move an ACTIVE order to another plan."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from order_service.db import Base, UTCDateTime, utcnow

#: Open plan changes: unpaid, or paid and being carried out by their RESIZE action.
OPEN_SQL = "status IN ('PENDING_PAYMENT', 'PAID')"


class PlanChange(Base):
    __tablename__ = "plan_changes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("orders.id", ondelete="CASCADE"))
    from_plan_id: Mapped[str] = mapped_column(String(64))
    to_plan_id: Mapped[str] = mapped_column(String(64))
    to_plan_name: Mapped[str] = mapped_column(String(255))
    # What the order takes when the resize is done, snapshotted like an order's.
    to_size_slug: Mapped[str] = mapped_column(String(64))
    duration: Mapped[str] = mapped_column(String(16))
    old_price: Mapped[int] = mapped_column(BigInteger)
    new_price: Mapped[int] = mapped_column(BigInteger)
    amount_due: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="IDR")
    resize_disk: Mapped[bool] = mapped_column(Boolean)
    # The droplet's disk when the change was asked for and the new plan's (GB): the
    # disk after a completed resize is the larger of the two when resize_disk, else
    # the first (a CPU/RAM-only resize keeps the disk it had).
    from_disk_gb: Mapped[int | None] = mapped_column(Integer)
    to_disk_gb: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str] = mapped_column(String(300))
    # The system RESIZE action that carries it out (set when PAID).
    action_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_plan_changes_order_created", "order_id", "created_at"),
        Index("ix_plan_changes_action", "action_id"),
        # One open plan change per order, enforced by the database itself (like
        # renewals'): of two racing creates the loser is 409 PLAN_CHANGE_PENDING.
        Index(
            "uq_plan_changes_one_open_per_order",
            "order_id",
            unique=True,
            postgresql_where=text(OPEN_SQL),
            sqlite_where=text(OPEN_SQL),
        ),
    )
