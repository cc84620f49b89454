"""Builds the provisioner of one process from the settings and starts it."""

from __future__ import annotations

import weakref

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from order_service import metrics
from order_service.config import Settings
from order_service.engine import process_identity
from order_service.provisioning.digitalocean import DigitalOceanClient
from order_service.provisioning.provisioner import Provisioner
from order_service.provisioning.rate_budget import RateBudget
from order_service.provisioning.shared_budget import SharedRateBudget
from order_service.provisioning.store import TaskStore
from order_service.provisioning.work import ProvisionerConfig


class RunningProvisioner:
    """The provisioner, plus the DO client when it owns one, stopped together."""

    def __init__(self, provisioner: Provisioner, client: DigitalOceanClient | None) -> None:
        self.provisioner = provisioner
        self._client = client

    async def stop(self) -> None:
        await self.provisioner.stop()
        if self._client is not None:
            await close_client(self._client)


class ClosingClient:
    """The process's one DO client as a background duty: closed after the duties using it."""

    def __init__(self, client: DigitalOceanClient) -> None:
        self.client = client

    async def stop(self) -> None:
        await close_client(self.client)


def build_client(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    transport: httpx.AsyncBaseTransport | None = None,
) -> DigitalOceanClient:
    """The ONE DigitalOcean client of a process: provisioning and server actions share
    it, and with it one rate budget."""
    token = settings.digitalocean_api_token
    budget = build_budget(settings, sessionmaker)
    client = DigitalOceanClient(
        settings.digitalocean_api_url,
        token.get_secret_value() if token is not None else None,
        budget=budget,
        transport=transport,
        on_response=metrics.record_do_response,
    )
    _budgets[client] = budget
    return client


def build_budget(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> RateBudget:
    """PostgreSQL: one budget shared by every process on the database (SPEC §12).
    SQLite serves one process, whose budget stays in memory."""
    engine = sessionmaker.kw.get("bind")
    if isinstance(engine, AsyncEngine) and engine.dialect.name == "postgresql":
        return SharedRateBudget(
            engine,
            process_identity(),
            per_minute=settings.digitalocean_rate_per_minute,
            per_hour=settings.digitalocean_rate_per_hour,
        )
    return RateBudget(
        per_minute=settings.digitalocean_rate_per_minute,
        per_hour=settings.digitalocean_rate_per_hour,
    )


# The budget of each client built here, closed with it (the shared budget holds
# a listening connection and may hand unused requests back).
_budgets: weakref.WeakKeyDictionary[DigitalOceanClient, RateBudget] = weakref.WeakKeyDictionary()


async def close_client(client: DigitalOceanClient) -> None:
    await client.aclose()
    budget = _budgets.pop(client, None)
    if budget is not None:
        await budget.aclose()


async def start_provisioner(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    client: DigitalOceanClient | None = None,
) -> RunningProvisioner:
    """Start the provisioner on `client` (shared, closed by its owner) or on a client
    of its own (closed when it stops)."""
    owned = None if client is not None else build_client(settings, sessionmaker, transport)
    client = client or owned
    assert client is not None
    provisioner = Provisioner(
        TaskStore(sessionmaker, process_identity(), expiry_reminders=settings.expiry_reminders),
        client,
        ProvisionerConfig(
            region=settings.digitalocean_default_region,
            poll_interval_s=settings.poll_interval_s,
            max_attempts=settings.provisioning_max_attempts,
            lease_s=settings.provisioning_lease_seconds,
        ),
    )
    provisioner.start()
    return RunningProvisioner(provisioner, owned)
