"""Builds the server-actions engine of one process on the process's DO client."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_service.actions.engine import ActionEngine, ActionsConfig, DropletClients
from order_service.actions.store import ActionStore
from order_service.config import Settings
from order_service.engine import process_identity


def start_actions(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    accounts: DropletClients,
) -> ActionEngine:
    """Start the engine; `accounts` is shared with the provisioner (one budget per account)."""
    engine = ActionEngine(
        ActionStore(sessionmaker, process_identity()),
        accounts,
        ActionsConfig(
            poll_interval_s=settings.poll_interval_s,
            timeout=settings.action_timeout,
            shutdown_grace=settings.shutdown_grace,
            lease_s=settings.provisioning_lease_seconds,
        ),
    )
    engine.start()
    return engine
