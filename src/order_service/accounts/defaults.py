"""The `default` account (DIGITALOCEAN_API_TOKEN) is always there."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_service.accounts.models import DEFAULT_ACCOUNT_ID, DEFAULT_ACCOUNT_NAME, DoAccount
from order_service.db import insert_if_absent, utcnow


async def ensure_default_account(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """The migration creates `default`; a process puts it back should it be missing
    (a database emptied by hand), so zero-setup stays zero-setup."""
    now = utcnow()
    async with sessionmaker() as session, session.begin():
        await insert_if_absent(
            session,
            DoAccount.__table__,
            {
                "id": DEFAULT_ACCOUNT_ID,
                "name": DEFAULT_ACCOUNT_NAME,
                "is_active": True,
                "reserve": 0,
                "health": "UNKNOWN",
                "created_at": now,
                "updated_at": now,
            },
        )
