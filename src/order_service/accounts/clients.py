"""The DO client of each account: what provisioning and actions ask for a droplet's account.

One `AccountClient` per account per process: its token (`default`'s from the
environment, the others decrypted with SECRETS_KEY), its own rate budget
(shared by all processes on PostgreSQL, SPEC sections 12-13), and the two
coalescers that keep a storm's DO requests low (the droplet watcher and the
look-up by tag). Callers never thread a token or a budget around: they ask
`AccountClients.get(account_id)`.

An account's row is read again at most every `REFRESH_S`, so a token changed
by PATCH in any process is in use here within seconds; the client of the old
token is closed at shutdown (requests in flight may still use it).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from order_service import metrics
from order_service.accounts.health import AccountStates
from order_service.accounts.models import DEFAULT_ACCOUNT_ID, DoAccount
from order_service.config import Settings
from order_service.orders.states import AccountHealth
from order_service.provisioning.budget_listener import PauseListener
from order_service.provisioning.budgets import build_budget
from order_service.provisioning.digitalocean import (
    DigitalOceanAccountError,
    DigitalOceanAccountFullError,
    DigitalOceanAuthError,
    DigitalOceanClient,
    DigitalOceanNotConfiguredError,
    Droplet,
)
from order_service.provisioning.lookup import ExistingDroplets
from order_service.provisioning.rate_budget import RateBudget
from order_service.provisioning.shared_budget import SharedRateBudget
from order_service.provisioning.watcher import DropletWatcher
from order_service.secret_box import InvalidToken, secret_box

logger = logging.getLogger("order_service.accounts")

accounts_t = DoAccount.__table__

#: How long an account's row (its token) is trusted before it is read again.
REFRESH_S = 5.0


@dataclass
class AccountClient:
    """Everything one process uses to talk to one account."""

    account_id: uuid.UUID
    name: str
    client: DigitalOceanClient
    budget: RateBudget
    existing: ExistingDroplets
    token_key: str | None
    loaded_at: float
    _watcher: DropletWatcher = field(repr=False)
    watch_task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def watcher(self) -> DropletWatcher:
        """The account's droplet watcher, started on first use (only duties follow droplets)."""
        if self.watch_task is None:
            self.watch_task = asyncio.get_running_loop().create_task(
                self._watcher.run(), name=f"droplet-watch-{self.name}"
            )
        return self._watcher

    async def aclose(self) -> None:
        if self.watch_task is not None:
            self.watch_task.cancel()
            await asyncio.gather(self.watch_task, return_exceptions=True)
        await self.client.aclose()
        await self.budget.aclose()


class AccountClients:
    """The account clients of one process, built on first use and closed together."""

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._sessionmaker = sessionmaker
        self._transport = transport
        self._box = secret_box(settings)
        self.states = AccountStates(sessionmaker)
        self._entries: dict[uuid.UUID, AccountClient] = {}
        self._retired: list[AccountClient] = []
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}
        self._background: set[asyncio.Task[None]] = set()
        engine = sessionmaker.kw.get("bind")
        postgres = isinstance(engine, AsyncEngine) and engine.dialect.name == "postgresql"
        self._listener = PauseListener(engine) if postgres else None

    async def get(self, account_id: uuid.UUID | None) -> AccountClient:
        """The client of this account (None: a droplet from before accounts, `default`).

        Raises DigitalOceanNotConfiguredError for an account without a usable token
        (gone, `default` without DIGITALOCEAN_API_TOKEN, a token SECRETS_KEY cannot open).
        """
        account_id = account_id or DEFAULT_ACCOUNT_ID
        entry = self._entries.get(account_id)
        if entry is not None and time.monotonic() - entry.loaded_at < REFRESH_S:
            return entry
        async with self._locks.setdefault(account_id, asyncio.Lock()):
            entry = self._entries.get(account_id)
            if entry is not None and time.monotonic() - entry.loaded_at < REFRESH_S:
                return entry
            return await self._load(account_id, entry)

    async def usable(self) -> list[AccountClient]:
        """Every account a DO question can go to now: a token, not UNHEALTHY (inactive
        ones included: droplets placed before they were disabled live there)."""
        statement = select(accounts_t.c.id).where(
            accounts_t.c.health != AccountHealth.UNHEALTHY.value
        )
        async with self._sessionmaker() as session:
            ids = list((await session.execute(statement)).scalars())
        found = []
        for account_id in ids:
            try:
                found.append(await self.get(account_id))
            except DigitalOceanAccountError:
                continue  # no token (default without DIGITALOCEAN_API_TOKEN)
        return found

    async def find_everywhere(self, order_id: uuid.UUID) -> list[tuple[uuid.UUID, Droplet]]:
        """The droplets tagged with the order in every usable account (SPEC section 7: ask
        DO before every create; a database that lost the task's account must not buy
        a second droplet elsewhere). Each account's look-ups are coalesced. An account
        that refuses its token is left out (and marked UNHEALTHY by its client)."""
        accounts = await self.usable()
        answers = await asyncio.gather(
            *(a.existing.find(order_id) for a in accounts), return_exceptions=True
        )
        found = []
        for account, answer in zip(accounts, answers, strict=True):
            if isinstance(answer, DigitalOceanAccountError):
                logger.warning("DO account %s left out of a look-up: %s", account.name, answer)
                continue
            if isinstance(answer, BaseException):
                raise answer
            found.extend((account.account_id, droplet) for droplet in answer)
        return found

    def budget_left(self, account_id: uuid.UUID) -> float:
        """Requests the account may still send this minute, as this process last saw it."""
        per_minute = self._settings.digitalocean_rate_per_minute
        entry = self._entries.get(account_id)
        if entry is None:
            return float(per_minute)
        used = entry.budget.in_window_minute
        if isinstance(entry.budget, SharedRateBudget):
            used = max(used, entry.budget.shared_minute_used)
        return float(per_minute - used)

    async def trouble(
        self, account: AccountClient | uuid.UUID, error: DigitalOceanAccountError
    ) -> bool:
        """Write what an account error says about the account before acting on it.

        True when the error is stale - the request went with a token the account no
        longer has (ops gave it a new one meanwhile) - so the caller tries again now
        instead of waiting."""
        account_id = account.account_id if isinstance(account, AccountClient) else account
        if isinstance(error, DigitalOceanAccountFullError):
            await self.states.full(account_id, error.message)
        elif isinstance(error, DigitalOceanNotConfiguredError):
            await self.states.not_configured(account_id, error.message)
        elif isinstance(error, DigitalOceanAuthError):
            if not isinstance(account, AccountClient):
                await self.states.refused(account_id, error.message)
                return False
            self.forget(account_id)
            current = await self.states.refused(
                account_id, error.message, token_key=account.token_key
            )
            return not current
        return False

    def forget(self, account_id: uuid.UUID) -> None:
        """Read the account's row again on next use (its token changed here)."""
        entry = self._entries.get(account_id)
        if entry is not None:
            entry.loaded_at = -REFRESH_S

    async def aclose(self) -> None:
        entries = [*self._entries.values(), *self._retired]
        self._entries.clear()
        self._retired.clear()
        for entry in entries:
            await entry.aclose()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self._listener is not None:
            await self._listener.aclose()

    # ------------------------------------------------------------ building

    async def _load(self, account_id: uuid.UUID, entry: AccountClient | None) -> AccountClient:
        statement = select(
            accounts_t.c.name, accounts_t.c.token_encrypted, accounts_t.c.health
        ).where(accounts_t.c.id == account_id)
        async with self._sessionmaker() as session:
            row = (await session.execute(statement)).first()
        if row is None:
            raise DigitalOceanNotConfiguredError(f"DigitalOcean account {account_id} is gone")
        key = row.token_encrypted
        if entry is not None and entry.token_key == key:
            entry.loaded_at = time.monotonic()
            return entry
        token = await self._token(account_id, row.name, row.token_encrypted)
        if entry is not None:
            self._retired.append(entry)  # closed at shutdown: requests may be in flight
        entry = self._build(account_id, row.name, token, key)
        self._entries[account_id] = entry
        return entry

    async def _token(self, account_id: uuid.UUID, name: str, encrypted: str | None) -> str:
        if account_id == DEFAULT_ACCOUNT_ID:
            token = self._settings.digitalocean_api_token
            if token is None:
                raise DigitalOceanNotConfiguredError(
                    "DigitalOcean API token is not configured: DIGITALOCEAN_API_TOKEN is not set"
                )
            return token.get_secret_value()
        message = None
        if encrypted is None or self._box is None:
            message = (
                f"DigitalOcean account {name} has no token this process can read "
                "(SECRETS_KEY is not set)"
            )
        else:
            try:
                return self._box.decrypt(encrypted)
            except InvalidToken:
                message = (
                    f"The token of DigitalOcean account {name} cannot be decrypted with "
                    "SECRETS_KEY (was its key removed before `order-service rotate-secrets`?)"
                )
        # Unusable until ops fix it: UNHEALTHY, so no new droplet is placed there.
        await self.states.refused(account_id, message)
        raise DigitalOceanAuthError(message)

    def _build(
        self, account_id: uuid.UUID, name: str, token: str, key: str | None
    ) -> AccountClient:
        settings = self._settings
        budget = build_budget(settings, self._sessionmaker, account_id, self._listener)
        client = DigitalOceanClient(
            settings.digitalocean_api_url,
            token,
            budget=budget,
            transport=self._transport,
            on_response=metrics.do_response_recorder(name),
            on_account_error=lambda error: self._on_account_error(entry, error),
        )
        entry = AccountClient(
            account_id=account_id,
            name=name,
            client=client,
            budget=budget,
            existing=ExistingDroplets(client),
            token_key=key,
            loaded_at=time.monotonic(),
            _watcher=DropletWatcher(client, settings.poll_interval_s),
        )
        if self._listener is not None:
            self._listener.start()
        return entry

    def _on_account_error(self, entry: AccountClient, error: DigitalOceanAccountError) -> None:
        # From any call of the client (provisioning, actions, checks): a refused token
        # is written at once; callers that act on it (placement) await `trouble` too.
        if isinstance(error, DigitalOceanAuthError) and not isinstance(
            error, DigitalOceanNotConfiguredError
        ):
            self._spawn(self.trouble(entry, error))

    def _spawn(self, work: Awaitable[object]) -> None:
        async def run() -> None:
            try:
                await work
            except Exception:
                logger.exception("DO account: writing its health failed")

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)


class OneClient:
    """One DO client as every account's (tools and tests that build an engine by hand)."""

    @dataclass
    class _Entry:
        client: DigitalOceanClient

    def __init__(self, client: DigitalOceanClient) -> None:
        self._entry = self._Entry(client)

    async def get(self, account_id: uuid.UUID | None) -> OneClient._Entry:
        return self._entry

    async def trouble(self, account: object, error: DigitalOceanAccountError) -> bool:
        return False
