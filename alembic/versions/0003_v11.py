"""v1.1: lifecycle, renewals, server actions, events and webhooks

The order's billing period and lifecycle columns with the indexes the
lifecycle scan reads by (status + the time it waits on); renewals with one
open renewal per order enforced by a partial unique index; server actions
(leased engine rows); the event outbox, its relay counter, webhook
endpoints and deliveries.

Revision ID: 0003_v11
Revises: 0002
Create Date: 2026-12-02 12:59:06.343279
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import order_service.db
from alembic import op

revision: str = "0003_v11"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_counter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_counter")),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=True),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", order_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("sequence", name=op.f("uq_events_sequence")),
    )
    op.bulk_insert(
        sa.table(
            "event_counter", sa.column("id", sa.Integer), sa.column("last_sequence", sa.BigInteger)
        ),
        [{"id": 1, "last_sequence": 0}],
    )
    op.create_index("ix_events_created", "events", ["created_at"], unique=False)
    op.create_index("ix_events_order_sequence", "events", ["order_id", "sequence"], unique=False)
    op.create_index("ix_events_type_sequence", "events", ["type", "sequence"], unique=False)
    op.create_index(
        "ix_events_unstamped",
        "events",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("sequence IS NULL"),
        sqlite_where=sa.text("sequence IS NULL"),
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column(
            "events",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", order_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", order_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_table(
        "renewals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("periods", sa.Integer(), nullable=False),
        sa.Column("duration", sa.String(length=16), nullable=False),
        sa.Column("base_price", sa.BigInteger(), nullable=False),
        sa.Column("promo_discount", sa.BigInteger(), nullable=False),
        sa.Column("coupon_code", sa.String(length=64), nullable=True),
        sa.Column("coupon_discount", sa.BigInteger(), nullable=False),
        sa.Column("final_price", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=300), nullable=False),
        sa.Column(
            "previous_expires_at", order_service.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("new_expires_at", order_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", order_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", order_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("paid_at", order_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_renewals_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_renewals")),
    )
    op.create_index(
        "ix_renewals_order_created", "renewals", ["order_id", "created_at"], unique=False
    )
    op.create_index(
        "uq_renewals_one_open_per_order",
        "renewals",
        ["order_id"],
        unique=True,
        postgresql_where=sa.text("status = 'PENDING_PAYMENT'"),
        sqlite_where=sa.text("status = 'PENDING_PAYMENT'"),
    )
    op.create_table(
        "server_actions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=300), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("image_id", sa.String(length=64), nullable=True),
        sa.Column("image_name", sa.String(length=255), nullable=True),
        sa.Column("image_slug", sa.String(length=128), nullable=True),
        sa.Column("do_action_id", sa.BigInteger(), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", order_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", order_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", order_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", order_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("intent_at", order_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", order_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", order_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_server_actions_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_server_actions")),
    )
    op.create_index(
        "ix_server_actions_order_created",
        "server_actions",
        ["order_id", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_server_actions_status_next",
        "server_actions",
        ["status", "next_attempt_at"],
        unique=False,
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", order_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_duration_ms", sa.Integer(), nullable=True),
        sa.Column("delivered_at", order_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", order_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", order_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", order_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index(
        "ix_webhook_deliveries_endpoint_created",
        "webhook_deliveries",
        ["endpoint_id", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_webhook_deliveries_status_next",
        "webhook_deliveries",
        ["status", "next_attempt_at"],
        unique=False,
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("activated_at", order_service.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("expires_at", order_service.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("suspended_at", order_service.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("suspension_reason", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("terminated_at", order_service.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("termination_reason", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column(
                "cancel_at_period_end",
                sa.Boolean(),
                server_default=sa.text("false"),
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column(
                "next_reminder_at", order_service.db.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.create_index("ix_orders_status_expires", ["status", "expires_at"], unique=False)
        batch_op.create_index(
            "ix_orders_status_next_reminder", ["status", "next_reminder_at"], unique=False
        )
        batch_op.create_index(
            "ix_orders_status_suspended", ["status", "suspended_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_status_suspended")
        batch_op.drop_index("ix_orders_status_next_reminder")
        batch_op.drop_index("ix_orders_status_expires")
        batch_op.drop_column("next_reminder_at")
        batch_op.drop_column("cancel_at_period_end")
        batch_op.drop_column("termination_reason")
        batch_op.drop_column("terminated_at")
        batch_op.drop_column("suspension_reason")
        batch_op.drop_column("suspended_at")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("activated_at")
    op.drop_index("ix_webhook_deliveries_status_next", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_endpoint_created", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_server_actions_status_next", table_name="server_actions")
    op.drop_index("ix_server_actions_order_created", table_name="server_actions")
    op.drop_table("server_actions")
    op.drop_index(
        "uq_renewals_one_open_per_order",
        table_name="renewals",
        postgresql_where=sa.text("status = 'PENDING_PAYMENT'"),
        sqlite_where=sa.text("status = 'PENDING_PAYMENT'"),
    )
    op.drop_index("ix_renewals_order_created", table_name="renewals")
    op.drop_table("renewals")
    op.drop_table("webhook_endpoints")
    op.drop_index(
        "ix_events_unstamped",
        table_name="events",
        postgresql_where=sa.text("sequence IS NULL"),
        sqlite_where=sa.text("sequence IS NULL"),
    )
    op.drop_index("ix_events_type_sequence", table_name="events")
    op.drop_index("ix_events_order_sequence", table_name="events")
    op.drop_index("ix_events_created", table_name="events")
    op.drop_table("events")
    op.drop_table("event_counter")
