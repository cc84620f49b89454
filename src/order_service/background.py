"""Every background duty of one process, started and stopped together.

Each duty (provisioning, server actions, the lifecycle scan, the event
relay, webhook deliveries) runs in every process and is split between
processes through the database (SPEC section 12); stopping one gives its
leases back. A duty is started here and nowhere else: `create_app`'s
lifespan calls `start_background` and stops what it returns.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from order_service.config import Settings
from order_service.db import dispose_when_returned

logger = logging.getLogger("order_service")


@dataclass(frozen=True)
class Transports:
    """httpx transports that route outside HTTP to in-process fakes (tests)."""

    digitalocean: httpx.AsyncBaseTransport | None = None
    webhooks: httpx.AsyncBaseTransport | None = None
    catalog: httpx.AsyncBaseTransport | None = None


class Background:
    """The running duties of this process."""

    def __init__(self) -> None:
        self.duties: dict[str, Any] = {}
        self._stack = contextlib.AsyncExitStack()

    def on_stop(self, callback: Callable[[], Awaitable[object]]) -> None:
        """Call `callback` when stopping, after every duty added from now on stopped."""
        self._stack.push_async_callback(callback)

    def add(self, name: str, duty: Any) -> None:
        """Keep `duty` (anything with `async stop()`); duties stop in reverse order."""
        self.duties[name] = duty
        self._stack.push_async_callback(duty.stop)

    async def stop(self) -> None:
        await self._stack.aclose()


async def start_background(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    transports: Transports,
    *,
    own_engine: AsyncEngine | None = None,
    event_sessionmaker: async_sessionmaker[AsyncSession] | None = None,
) -> Background:
    """Start every duty; `own_engine` (the duties' own, behind `sessionmaker`) is
    disposed once they all stopped."""
    background = Background()
    if own_engine is not None:
        background.on_stop(partial(dispose_when_returned, own_engine))
    try:
        if settings.provisioning_enabled:
            from order_service.accounts.checker import AccountChecker
            from order_service.accounts.clients import AccountClients
            from order_service.actions.runtime import start_actions
            from order_service.provisioning.runtime import ClosingAccounts, start_provisioner

            # One client (and one rate budget) per DO account for every DO side
            # effect of the process; added first, so it is closed after the
            # duties using it.
            accounts = AccountClients(settings, sessionmaker, transports.digitalocean)
            background.add("digitalocean", ClosingAccounts(accounts))
            checker = AccountChecker(accounts, settings.digitalocean_account_check_interval)
            checker.start()
            background.add("account-checks", checker)
            background.add(
                "provisioning", start_provisioner(settings, sessionmaker, accounts, checker)
            )
            background.add("actions", start_actions(settings, sessionmaker, accounts))
        # The event relay and webhook deliveries: always on. Without the relay
        # the feed would stop and webhooks would never be sent.
        from order_service.events.runtime import start_events

        background.add(
            "events",
            start_events(settings, event_sessionmaker or sessionmaker, transports.webhooks),
        )
        if settings.lifecycle_enabled:
            from order_service.catalog.client import CatalogClient
            from order_service.lifecycle.scanner import LifecycleScanner

            # Rule 6 prices the renewals it opens: the duties' own catalog client,
            # closed after the scanner stopped.
            catalog = CatalogClient(
                settings.catalog_service_url,
                timeout_ms=settings.catalog_service_timeout_ms,
                transport=transports.catalog,
            )
            background.on_stop(catalog.aclose)
            scanner = LifecycleScanner(sessionmaker, settings, catalog=catalog)
            scanner.start()
            background.add("lifecycle", scanner)
        # v1.1 duties register here, each behind its own setting.
    except BaseException:
        await background.stop()
        raise
    return background
