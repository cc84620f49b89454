"""v1.2: plan changes, the RESIZE action's step, renewals that open themselves

- `plan_changes` (SPEC section 15): one row per request to move an ACTIVE
  order to another plan; at most one open (PENDING_PAYMENT or PAID) per order,
  enforced by a partial unique index like renewals'.
- `server_actions.step` / `step_at`: the DO action a RESIZE is at (shutdown,
  power_off, resize, power_on) and since when, so a restarted process resumes
  at the step reached.
- `orders.renewal_due_at` (SPEC section 9, rule 6): the expiresAt of the period
  whose next renewal the service has yet to open, null once opened (set with
  every expiresAt, like next_reminder_at; filled from expires_at here), with an
  index on (status, renewal_due_at) so the scan reads only the due orders.
- `orders.disk_gb`: the droplet's disk as the last resize left it (null: the
  plan's diskGb).
(`orders.plan_changed_at` came with 0008_customer_server.)

Revision ID: 0009_plan_changes
Revises: 0008_customer_server
Create Date: 2026-12-12
"""

from collections.abc import Sequence

import sqlalchemy as sa

import order_service.db
from alembic import op

revision: str = "0009_plan_changes"
down_revision: str | None = "0008_customer_server"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_SQL = "status IN ('PENDING_PAYMENT', 'PAID')"


def upgrade() -> None:
    op.create_table(
        "plan_changes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("from_plan_id", sa.String(length=64), nullable=False),
        sa.Column("to_plan_id", sa.String(length=64), nullable=False),
        sa.Column("to_plan_name", sa.String(length=255), nullable=False),
        sa.Column("to_size_slug", sa.String(length=64), nullable=False),
        sa.Column("duration", sa.String(length=16), nullable=False),
        sa.Column("old_price", sa.BigInteger(), nullable=False),
        sa.Column("new_price", sa.BigInteger(), nullable=False),
        sa.Column("amount_due", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("resize_disk", sa.Boolean(), nullable=False),
        sa.Column("from_disk_gb", sa.Integer(), nullable=True),
        sa.Column("to_disk_gb", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=300), nullable=False),
        sa.Column("action_id", sa.Uuid(), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", order_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", order_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("paid_at", order_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", order_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_plan_changes_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_changes")),
    )
    op.create_index(
        "ix_plan_changes_order_created", "plan_changes", ["order_id", "created_at"], unique=False
    )
    op.create_index("ix_plan_changes_action", "plan_changes", ["action_id"], unique=False)
    op.create_index(
        "uq_plan_changes_one_open_per_order",
        "plan_changes",
        ["order_id"],
        unique=True,
        postgresql_where=sa.text(OPEN_SQL),
        sqlite_where=sa.text(OPEN_SQL),
    )
    with op.batch_alter_table("server_actions") as batch:
        batch.add_column(sa.Column("step", sa.String(length=16), nullable=True))
        batch.add_column(
            sa.Column("step_at", order_service.db.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("disk_gb", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("renewal_due_at", order_service.db.UTCDateTime(timezone=True), nullable=True)
        )
    # Every running period is still to be invoiced (the open-renewal check under the
    # order's lock keeps an order that has one from getting a second).
    op.execute(
        "UPDATE orders SET renewal_due_at = expires_at"
        " WHERE expires_at IS NOT NULL AND status IN ('ACTIVE', 'SUSPENDED')"
    )
    op.create_index(
        "ix_orders_status_renewal_due", "orders", ["status", "renewal_due_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_orders_status_renewal_due", table_name="orders")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("renewal_due_at")
        batch.drop_column("disk_gb")
    with op.batch_alter_table("server_actions") as batch:
        batch.drop_column("step_at")
        batch.drop_column("step")
    op.drop_index("uq_plan_changes_one_open_per_order", table_name="plan_changes")
    op.drop_index("ix_plan_changes_action", table_name="plan_changes")
    op.drop_index("ix_plan_changes_order_created", table_name="plan_changes")
    op.drop_table("plan_changes")
