"""Checks each account every DIGITALOCEAN_ACCOUNT_CHECK_INTERVAL (SPEC section 13).

`GET /v2/account` refreshes the account's `dropletLimit` and health. The
checks are split between processes through the database (an account's next
check is claimed with one conditional UPDATE), so N processes still ask DO
once per account per interval. The same loop keeps the per-account metrics
current.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from datetime import timedelta

from sqlalchemy import select, update

from order_service import metrics
from order_service.accounts.clients import AccountClients
from order_service.accounts.defaults import ensure_default_account
from order_service.accounts.models import DoAccount
from order_service.accounts.placement import Usage, free_slots, usage_of
from order_service.db import utcnow
from order_service.orders.states import AccountHealth
from order_service.provisioning.digitalocean import (
    DigitalOceanAuthError,
    DigitalOceanError,
    DigitalOceanNotConfiguredError,
)

logger = logging.getLogger("order_service.accounts")

accounts_t = DoAccount.__table__

# How often a process looks for due checks and refreshes the metrics.
TICK_S = 5.0
# Placement asks for accounts with an unknown limit at most this often per process.
UNKNOWN_EVERY_S = 1.0


class AccountChecker:
    def __init__(self, accounts: AccountClients, interval: timedelta) -> None:
        self._accounts = accounts
        self._states = accounts.states
        self._interval = interval
        self._tick_s = min(TICK_S, interval.total_seconds())
        self._task: asyncio.Task[None] | None = None
        self._unknown_lock = asyncio.Lock()
        self._unknown_at = -UNKNOWN_EVERY_S

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="account-checks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            try:
                await ensure_default_account(self._states.sessionmaker)
                for account_id in await self._states.claim_due_checks(self._interval):
                    await self.check(account_id)
                await self.refresh_metrics()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("DO account checks failed; trying again")
            await asyncio.sleep(self._tick_s)

    async def check(self, account_id: uuid.UUID) -> None:
        """Ask DO about the account now and write what it said."""
        try:
            account = await self._accounts.get(account_id)
            answer = await account.client.get_account()
        except DigitalOceanNotConfiguredError as exc:
            await self._states.not_configured(account_id, exc.message)
        except DigitalOceanAuthError as exc:
            await self._states.refused(account_id, exc.message)
        except DigitalOceanError as exc:  # down, 5xx, an unexpected answer
            await self._states.check_failed(account_id, exc.message)
        else:
            await self._states.checked(account_id, answer)

    async def check_unknown(self) -> bool:
        """Check now the active accounts whose limit was never read (a fresh start, an
        account re-enabled before its first check). True if any of them was checked."""
        async with self._unknown_lock:
            if time.monotonic() - self._unknown_at < UNKNOWN_EVERY_S:
                return False  # a storm's workers all ask at once: one look per second
            self._unknown_at = time.monotonic()
            statement = (
                update(accounts_t)
                .where(
                    accounts_t.c.is_active.is_(True),
                    accounts_t.c.droplet_limit.is_(None),
                    accounts_t.c.health != AccountHealth.UNHEALTHY.value,
                )
                .values(next_check_at=utcnow() + self._interval)
                .returning(accounts_t.c.id)
            )
            async with self._states.session() as session, session.begin():
                ids = list((await session.execute(statement)).scalars())
            for account_id in ids:
                await self.check(account_id)
            return bool(ids)

    async def refresh_metrics(self) -> None:
        async with self._states.session() as session:
            rows = list((await session.execute(select(accounts_t))).mappings())
            usage = await usage_of(session)
        for row in rows:
            name = row["name"]
            used = usage.get(row["id"], Usage())
            metrics.DO_ACCOUNT_DROPLETS.labels(name).set(used.droplets)
            metrics.DO_ACCOUNT_CREATING.labels(name).set(used.creating)
            metrics.DO_ACCOUNT_FREE.labels(name).set(free_slots(row, used))
            healthy = row["health"] == AccountHealth.HEALTHY.value
            metrics.DO_ACCOUNT_HEALTHY.labels(name).set(1 if healthy else 0)


async def check_soon(checker: AccountChecker | None, account_id: uuid.UUID) -> None:
    """Check an account in the background (an API change wants a fresh limit)."""
    if checker is not None:
        with contextlib.suppress(Exception):
            await checker.check(account_id)
