"""The server_actions table: durable, leased DigitalOcean operations on a droplet."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from order_service.db import Base, UTCDateTime, utcnow


class ServerAction(Base):
    __tablename__ = "server_actions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("orders.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str] = mapped_column(String(300))
    reason: Mapped[str | None] = mapped_column(Text)
    # REBUILD: the catalog image, and what the order takes on completion.
    image_id: Mapped[str | None] = mapped_column(String(64))
    image_name: Mapped[str | None] = mapped_column(String(255))
    image_slug: Mapped[str | None] = mapped_column(String(128))
    do_action_id: Mapped[int | None] = mapped_column(BigInteger)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # --- engine bookkeeping (not part of the API) ---
    # Written *before* the DO request is sent: set with no do_action_id means
    # the request may have reached DO, so DO is asked before sending again.
    intent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # RESIZE (v1.2): the DO action of the step being worked (shutdown, power_off,
    # resize, power_on) and when that step began. intent_at / do_action_id above
    # are the step's own: they start empty at each step.
    step: Mapped[str | None] = mapped_column(String(16))
    step_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_server_actions_order_created", "order_id", "created_at"),
        Index("ix_server_actions_status_next", "status", "next_attempt_at"),
    )
