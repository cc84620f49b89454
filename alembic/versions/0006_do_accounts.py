"""v1.2: DigitalOcean accounts, the task's account, and a budget per account

`do_accounts` holds the accounts droplets are placed in (SPEC section 13); the
migration creates `default` (the account of DIGITALOCEAN_API_TOKEN, token kept in
the environment) and gives it every task that already has one, so existing
droplets keep being worked with the token that made them. The shared budget's
ledger becomes per account, and each grant says whether it is for bulk requests
(which never get the follow-ups' reserve): its rows are short-lived slices of
requests, so the tables are simply recreated (a running process takes a new slice).

Revision ID: 0006_do_accounts
Revises: 0005_backfill_periods
Create Date: 2026-12-07
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa

import order_service.db
from alembic import op

revision: str = "0006_do_accounts"
down_revision: str | None = "0005_backfill_periods"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_ACCOUNT_ID = uuid.UUID("00000000-0000-4000-8000-00000000da01")
SLOT_HELD_SQL = (
    "do_account_id IS NOT NULL AND (status IN ('PENDING', 'IN_PROGRESS') OR "
    "(droplet_id IS NOT NULL AND coalesce(droplet_status, 'new') NOT IN ('destroyed', 'gone')))"
)


def upgrade() -> None:
    accounts = op.create_table(
        "do_accounts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("token_encrypted", sa.Text(), nullable=True),
        sa.Column("token_hint", sa.String(length=4), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("reserve", sa.Integer(), server_default="0", nullable=False),
        sa.Column("droplet_limit", sa.Integer(), nullable=True),
        sa.Column("health", sa.String(length=16), server_default="UNKNOWN", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_checked_at", order_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_check_at", order_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", order_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", order_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_do_accounts")),
        sa.UniqueConstraint("name", name=op.f("uq_do_accounts_name")),
    )
    now = sa.func.current_timestamp()
    op.execute(
        accounts.insert().values(
            id=sa.literal(DEFAULT_ACCOUNT_ID, sa.Uuid()),
            name="default",
            is_active=True,
            reserve=0,
            health="UNKNOWN",
            created_at=now,
            updated_at=now,
        )
    )
    with op.batch_alter_table("provisioning_tasks") as batch:
        batch.add_column(sa.Column("do_account_id", sa.Uuid(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_provisioning_tasks_do_account_id_do_accounts"),
            "do_accounts",
            ["do_account_id"],
            ["id"],
            ondelete="SET NULL",
        )
    # Every task that has (or may have) a droplet was made with DIGITALOCEAN_API_TOKEN.
    tasks = sa.table(
        "provisioning_tasks",
        sa.column("do_account_id", sa.Uuid()),
        sa.column("droplet_id", sa.BigInteger()),
        sa.column("create_intent_at", order_service.db.UTCDateTime(timezone=True)),
        sa.column("status", sa.String()),
    )
    op.execute(
        tasks.update()
        .where(
            sa.or_(
                tasks.c.droplet_id.is_not(None),
                tasks.c.create_intent_at.is_not(None),
                tasks.c.status.in_(("PENDING", "IN_PROGRESS")),
            )
        )
        .values(do_account_id=sa.literal(DEFAULT_ACCOUNT_ID, sa.Uuid()))
    )
    op.create_index(
        "ix_provisioning_tasks_account_slots",
        "provisioning_tasks",
        ["do_account_id"],
        unique=False,
        postgresql_where=sa.text(SLOT_HELD_SQL),
        sqlite_where=sa.text(SLOT_HELD_SQL),
    )

    op.drop_index("ix_do_budget_grants_expires_at", table_name="do_budget_grants")
    op.drop_table("do_budget_grants")
    op.drop_table("do_budget")
    op.create_table(
        "do_budget",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("paused_until", order_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_do_budget")),
    )
    op.create_table(
        "do_budget_grants",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("granted_at", order_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", order_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("bulk", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_do_budget_grants")),
    )
    op.create_index(
        "ix_do_budget_grants_account_expires",
        "do_budget_grants",
        ["account_id", "expires_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_do_budget_grants_account_expires", table_name="do_budget_grants")
    op.drop_table("do_budget_grants")
    op.drop_table("do_budget")
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
    op.drop_index("ix_provisioning_tasks_account_slots", table_name="provisioning_tasks")
    with op.batch_alter_table("provisioning_tasks") as batch:
        batch.drop_constraint(
            op.f("fk_provisioning_tasks_do_account_id_do_accounts"), type_="foreignkey"
        )
        batch.drop_column("do_account_id")
    op.drop_table("do_accounts")
