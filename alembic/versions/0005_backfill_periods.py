"""Give orders that were ACTIVE before v1.1 a billing period

v1 never set a period, so an order ACTIVE before this upgrade would never
expire nor get a reminder. Its period starts when it first became ACTIVE
(its history row; else paid_at, else updated_at) and ends a duration later,
but never sooner than 7 days after the upgrade: a server whose paid time
ran out while v1 did not look is not suspended the minute v1.1 starts; its
owner gets the P3D and P1D reminders and a week to renew (the choice is in
docs/architecture.md). Reminders use the default thresholds (P7D, P3D,
P1D); a renewal or an ops expiry change recomputes them with the settings.

Revision ID: 0005_backfill_periods
Revises: 0004_do_budget
Create Date: 2026-12-02
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from dateutil.relativedelta import relativedelta

from alembic import op
from order_service.db import UTCDateTime

revision: str = "0005_backfill_periods"
down_revision: str | None = "0004_do_budget"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONTHS = {"MONTHLY": 1, "QUARTERLY": 3, "SEMI_ANNUAL": 6, "ANNUAL": 12}
NOTICE = timedelta(days=7)
THRESHOLDS = (timedelta(days=7), timedelta(days=3), timedelta(days=1))


orders = sa.table(
    "orders",
    sa.column("id", sa.Uuid()),
    sa.column("status", sa.String()),
    sa.column("duration", sa.String()),
    sa.column("paid_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
    sa.column("activated_at", UTCDateTime()),
    sa.column("expires_at", UTCDateTime()),
    sa.column("next_reminder_at", UTCDateTime()),
)
history = sa.table(
    "status_history",
    sa.column("order_id", sa.Uuid()),
    sa.column("new_status", sa.String()),
    sa.column("created_at", UTCDateTime()),
)


def upgrade() -> None:
    bind = op.get_bind()
    now = datetime.now(UTC)
    first_active = (
        sa.select(sa.func.min(history.c.created_at))
        .where(history.c.order_id == orders.c.id, history.c.new_status == "ACTIVE")
        .scalar_subquery()
    )
    rows = bind.execute(
        sa.select(
            orders.c.id,
            orders.c.duration,
            sa.type_coerce(first_active, UTCDateTime()).label("first_active"),
            orders.c.paid_at,
            orders.c.updated_at,
        ).where(orders.c.status == "ACTIVE", orders.c.activated_at.is_(None))
    ).all()
    for order_id, duration, first, paid_at, updated_at in rows:
        activated = first or paid_at or updated_at or now
        expires = max(activated + relativedelta(months=MONTHS.get(duration, 1)), now + NOTICE)
        reminder = next((expires - t for t in THRESHOLDS if expires - t >= now), None)
        bind.execute(
            orders.update()
            .where(orders.c.id == order_id)
            .values(activated_at=activated, expires_at=expires, next_reminder_at=reminder)
        )


def downgrade() -> None:
    # Data only: the columns go with 0003's downgrade.
    pass
