"""v1.2: the customer's server - hostname, region, access, keys at DO, first-access password

`orders` gets the customer's choices (SPEC section 14): `hostname`, `region`,
`access` (SSH_KEYS | PASSWORD), `ssh_keys` (a JSON copy of the chosen keys:
name, fingerprint, publicKey) and `plan_changed_at` (SPEC section 15, written by
plan changes).

Existing orders: `region` is their task's `do_region` (where the droplet is), or
DIGITALOCEAN_DEFAULT_REGION when they have no task yet (what v1 would have used at
payment). `access`, `ssh_keys` and `hostname` stay null: before v1.2 the service
gave no first access of its own (DO e-mailed a root password to the account's
owner), so such an order has no credentials here (the credentials endpoint says
so, 410).

`do_account_keys` remembers which SSH keys are present in which DO account, so a
key costs DO requests once per account. `order_credentials` holds a PASSWORD
order's root password, encrypted with SECRETS_KEY, until CREDENTIALS_TTL after the
order first became ACTIVE (a partial index on the held ones by `active_since`: the
purge reads what is due).

Revision ID: 0008_customer_server
Revises: 0007_ssh_keys
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.dialects import postgresql

import order_service.db
from alembic import op

revision: str = "0008_customer_server"
down_revision: str | None = "0007_ssh_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HELD_SQL = "password_encrypted IS NOT NULL"


class _Region(BaseSettings):
    """DIGITALOCEAN_DEFAULT_REGION as the service reads it (environment, then .env)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    digitalocean_default_region: str = "sgp1"


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("hostname", sa.String(length=253), nullable=True))
        batch.add_column(sa.Column("region", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("access", sa.String(length=16), nullable=True))
        batch.add_column(
            sa.Column(
                "ssh_keys",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )
        batch.add_column(
            sa.Column("plan_changed_at", order_service.db.UTCDateTime(timezone=True), nullable=True)
        )
    orders = sa.table("orders", sa.column("id", sa.Uuid()), sa.column("region", sa.String()))
    tasks = sa.table(
        "provisioning_tasks",
        sa.column("order_id", sa.Uuid()),
        sa.column("do_region", sa.String()),
    )
    task_region = (
        sa.select(tasks.c.do_region).where(tasks.c.order_id == orders.c.id).scalar_subquery()
    )
    default = _Region().digitalocean_default_region
    op.execute(orders.update().values(region=sa.func.coalesce(task_region, default)))

    op.create_table(
        "do_account_keys",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("fingerprint", sa.String(length=47), nullable=False),
        sa.Column("do_key_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", order_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["do_accounts.id"],
            name=op.f("fk_do_account_keys_account_id_do_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "fingerprint", name=op.f("pk_do_account_keys")),
    )
    op.create_table(
        "order_credentials",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("password_encrypted", sa.Text(), nullable=True),
        sa.Column("created_at", order_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("active_since", order_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("erased_at", order_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_credentials_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_order_credentials")),
    )
    op.create_index(
        "ix_order_credentials_held_active_since",
        "order_credentials",
        ["active_since"],
        unique=False,
        postgresql_where=sa.text(HELD_SQL),
        sqlite_where=sa.text(HELD_SQL),
    )


def downgrade() -> None:
    op.drop_index("ix_order_credentials_held_active_since", table_name="order_credentials")
    op.drop_table("order_credentials")
    op.drop_table("do_account_keys")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("plan_changed_at")
        batch.drop_column("ssh_keys")
        batch.drop_column("access")
        batch.drop_column("region")
        batch.drop_column("hostname")
