"""v1.2: the customer's saved SSH keys (SPEC section 14)

One row per key of a user: name, DigitalOcean's MD5 fingerprint, the public
key line and its type. A user has a key once (unique user + fingerprint);
their keys are listed newest first (user + created_at).

Revision ID: 0007_ssh_keys
Revises: 0006_do_accounts
Create Date: 2026-12-09
"""

from collections.abc import Sequence

import sqlalchemy as sa

import order_service.db
from alembic import op

revision: str = "0007_ssh_keys"
down_revision: str | None = "0006_do_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ssh_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("fingerprint", sa.String(length=47), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("created_at", order_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ssh_keys")),
        sa.UniqueConstraint("user_id", "fingerprint", name="uq_ssh_keys_user_fingerprint"),
    )
    op.create_index("ix_ssh_keys_user_created", "ssh_keys", ["user_id", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_ssh_keys_user_created", table_name="ssh_keys")
    op.drop_table("ssh_keys")
