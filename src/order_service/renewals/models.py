"""The renewals table: one row per request to extend an order's period."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from order_service.db import Base, UTCDateTime, utcnow


class Renewal(Base):
    __tablename__ = "renewals"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("orders.id", ondelete="CASCADE"))
    periods: Mapped[int] = mapped_column(Integer)
    duration: Mapped[str] = mapped_column(String(16))
    base_price: Mapped[int] = mapped_column(BigInteger)
    promo_discount: Mapped[int] = mapped_column(BigInteger, default=0)
    coupon_code: Mapped[str | None] = mapped_column(String(64))
    coupon_discount: Mapped[int] = mapped_column(BigInteger, default=0)
    final_price: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="IDR")
    status: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str] = mapped_column(String(300))
    previous_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    new_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_renewals_order_created", "order_id", "created_at"),
        # One open renewal per order, enforced by the database itself: two
        # racing creates cannot both insert (the loser is 409 RENEWAL_PENDING).
        Index(
            "uq_renewals_one_open_per_order",
            "order_id",
            unique=True,
            postgresql_where=text("status = 'PENDING_PAYMENT'"),
            sqlite_where=text("status = 'PENDING_PAYMENT'"),
        ),
    )
