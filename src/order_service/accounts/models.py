"""The do_accounts table: the DigitalOcean accounts droplets are placed in (SPEC section 13)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, Integer, String, Text, Uuid, true
from sqlalchemy.orm import Mapped, mapped_column

from order_service.db import Base, UTCDateTime, utcnow

#: The account of DIGITALOCEAN_API_TOKEN: created by the migration (every droplet
#: made before v1.2 is in it), its token never stored (it stays in the environment).
DEFAULT_ACCOUNT_ID = uuid.UUID("00000000-0000-4000-8000-00000000da01")
DEFAULT_ACCOUNT_NAME = "default"


class DoAccount(Base):
    __tablename__ = "do_accounts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    # Fernet token (secret_box.py) of the DO token; null for `default`.
    token_encrypted: Mapped[str | None] = mapped_column(Text)
    # The token's last 4 characters, the only part ever shown.
    token_hint: Mapped[str | None] = mapped_column(String(4))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Room kept for droplets made by hand in the account.
    reserve: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # DO's droplet_limit as last checked (null: never checked; placement skips it).
    droplet_limit: Mapped[int | None] = mapped_column(Integer)
    health: Mapped[str] = mapped_column(String(16), default="UNKNOWN", server_default="UNKNOWN")
    last_error: Mapped[str | None] = mapped_column(Text)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When a process should check it next (claimed atomically: one check per interval).
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
