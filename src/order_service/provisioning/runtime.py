"""Builds the provisioner of one process from the settings and starts it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_service.access.account_keys import AccountKeys
from order_service.accounts.checker import AccountChecker
from order_service.accounts.clients import AccountClients
from order_service.config import Settings
from order_service.engine import process_identity
from order_service.provisioning.provisioner import Provisioner
from order_service.provisioning.store import TaskStore
from order_service.provisioning.work import ProvisionerConfig
from order_service.secret_box import secret_box


class ClosingAccounts:
    """The process's account clients as a background duty: closed after the duties using them."""

    def __init__(self, accounts: AccountClients) -> None:
        self.accounts = accounts

    async def stop(self) -> None:
        await self.accounts.aclose()


def start_provisioner(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    accounts: AccountClients,
    checker: AccountChecker | None = None,
) -> Provisioner:
    """Start the provisioner on the process's account clients (shared with the actions)."""
    provisioner = Provisioner(
        TaskStore(sessionmaker, process_identity(), expiry_reminders=settings.expiry_reminders),
        accounts,
        ProvisionerConfig(
            region=settings.digitalocean_default_region,
            poll_interval_s=settings.poll_interval_s,
            max_attempts=settings.provisioning_max_attempts,
            lease_s=settings.provisioning_lease_seconds,
            wait_retry_s=min(60.0, settings.digitalocean_account_check_interval.total_seconds()),
        ),
        checker=checker,
        keys=AccountKeys(sessionmaker),
        box=secret_box(settings),
    )
    provisioner.start()
    return provisioner
