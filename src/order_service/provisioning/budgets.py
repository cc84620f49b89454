"""The DO rate budget of one account in one process (SPEC sections 12-13)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from order_service.accounts.models import DEFAULT_ACCOUNT_ID
from order_service.config import Settings
from order_service.engine import process_identity
from order_service.provisioning.budget_listener import PauseListener
from order_service.provisioning.rate_budget import RateBudget
from order_service.provisioning.shared_budget import SharedRateBudget


def build_budget(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    account_id: uuid.UUID = DEFAULT_ACCOUNT_ID,
    listener: PauseListener | None = None,
) -> RateBudget:
    """PostgreSQL: the account's budget shared by every process on the database.
    SQLite serves one process, whose budgets stay in memory."""
    engine = sessionmaker.kw.get("bind")
    if isinstance(engine, AsyncEngine) and engine.dialect.name == "postgresql":
        return SharedRateBudget(
            engine,
            process_identity(),
            per_minute=settings.digitalocean_rate_per_minute,
            per_hour=settings.digitalocean_rate_per_hour,
            account_id=account_id,
            listener=listener,
        )
    return RateBudget(
        per_minute=settings.digitalocean_rate_per_minute,
        per_hour=settings.digitalocean_rate_per_hour,
    )
