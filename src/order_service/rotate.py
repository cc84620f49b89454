"""`order-service rotate-secrets`: every stored secret re-encrypted with the first SECRETS_KEY.

Rotation (SPEC section 2): put the new key first in SECRETS_KEY (the old one
after it), run this, then drop the old key. Each row is rewritten in its own
short transaction, so a run can be repeated or interrupted safely (a token
already under the first key is rotated again: it stays readable).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Column, Table, select, update

from order_service.access.models import OrderCredential
from order_service.accounts.models import DoAccount
from order_service.config import ConfigError, Settings
from order_service.db import create_engine, create_sessionmaker
from order_service.secret_box import secret_box

#: Every column that holds a SecretBox token: (table, its key column, the column).
SECRET_COLUMNS: list[tuple[Table, Column[object], Column[object]]] = [
    (DoAccount.__table__, DoAccount.__table__.c.id, DoAccount.__table__.c.token_encrypted),
    # First-access passwords (SPEC section 14); erased ones are null and skipped.
    (
        OrderCredential.__table__,
        OrderCredential.__table__.c.order_id,
        OrderCredential.__table__.c.password_encrypted,
    ),
]


def register(table: Table, key: Column[object], column: Column[object]) -> None:
    """A domain with a secret at rest adds its column here (its models module does)."""
    SECRET_COLUMNS.append((table, key, column))


async def rotate_secrets(
    settings: Settings,
    columns: Sequence[tuple[Table, Column[object], Column[object]]] | None = None,
) -> dict[str, int]:
    """Rotate every stored secret; returns how many were rewritten, per table."""
    box = secret_box(settings)
    if box is None:
        raise ConfigError("SECRETS_KEY is required to rotate the stored secrets")
    engine = create_engine(settings.database_url, pool_size=1)
    sessionmaker = create_sessionmaker(engine)
    counts: dict[str, int] = {}
    try:
        for table, key, column in columns or SECRET_COLUMNS:
            async with sessionmaker() as session:
                rows = (await session.execute(select(key, column).where(column.is_not(None)))).all()
            for row_key, token in rows:
                async with sessionmaker() as session, session.begin():
                    await session.execute(
                        update(table).where(key == row_key).values({column.name: box.rotate(token)})
                    )
            counts[table.name] = len(rows)
    finally:
        await engine.dispose()
    return counts
