"""The access tables (SPEC sections 3 and 14): a user's saved SSH public keys, the keys
known to be in each DO account, and an order's first-access password (encrypted)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint, Uuid, text
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


class DoAccountKey(Base):
    """A key known to be present in a DO account: uploaded by us, or found there.

    Written after DO said so (GET found it, POST made it, or POST's 422 "already
    in use"), so a key costs DO requests once per account, from any process.
    """

    __tablename__ = "do_account_keys"

    account_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("do_accounts.id", ondelete="CASCADE"), primary_key=True
    )
    fingerprint: Mapped[str] = mapped_column(String(47), primary_key=True)
    # DO's id of the key (null when DO only said "already in use").
    do_key_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


#: The first-access passwords still held: the background purge reads only these.
HELD_SQL = "password_encrypted IS NOT NULL"


class OrderCredential(Base):
    """An order's first-access root password (PASSWORD orders only), encrypted with
    SECRETS_KEY (secret_box.py). Written before the droplet's create is sent (a
    retried create reuses it); erased - `password_encrypted` null, `erased_at` set -
    CREDENTIALS_TTL after the order first became ACTIVE, or when it ends."""

    __tablename__ = "order_credentials"

    order_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    password_encrypted: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the order first became ACTIVE: the TTL counts from here.
    active_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        # The purge reads what is due and nothing else: held passwords by activation.
        Index(
            "ix_order_credentials_held_active_since",
            "active_since",
            postgresql_where=text(HELD_SQL),
            sqlite_where=text(HELD_SQL),
        ),
    )
