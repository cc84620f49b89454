"""One DigitalOcean rate budget for all processes on one database

`do_budget` holds the lock grants are taken under and the shared pause after a
429; `do_budget_grants` the slices of requests leased by each process. Created
on SQLite too (one process keeps its budget in memory there, so it stays empty).

Revision ID: 0004_do_budget
Revises: 0003_v11
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa

import order_service.db
from alembic import op

revision: str = "0004_do_budget"
down_revision: str | None = "0003_v11"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "do_budget",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("paused_until", order_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_do_budget")),
    )
    op.create_table(
        "do_budget_grants",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("granted_at", order_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", order_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_do_budget_grants")),
    )
    op.create_index(
        "ix_do_budget_grants_expires_at", "do_budget_grants", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_do_budget_grants_expires_at", table_name="do_budget_grants")
    op.drop_table("do_budget_grants")
    op.drop_table("do_budget")
