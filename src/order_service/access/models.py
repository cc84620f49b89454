"""The ssh_keys table: a user's saved SSH public keys (SPEC sections 3 and 14)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from order_service.db import Base, UTCDateTime, utcnow


class SshKey(Base):
    __tablename__ = "ssh_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(100))
    # "aa:bb:…": MD5 of the key blob, DigitalOcean's form (16 hex pairs).
    fingerprint: Mapped[str] = mapped_column(String(47))
    # "<type> <base64>", without the comment (access/keys.py).
    public_key: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        # The same key twice for one user is refused by the database itself:
        # of two racing creates, the loser is 409 SSH_KEY_EXISTS.
        UniqueConstraint("user_id", "fingerprint", name="uq_ssh_keys_user_fingerprint"),
        # A user's keys newest first.
        Index("ix_ssh_keys_user_created", "user_id", "created_at"),
    )
