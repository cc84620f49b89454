"""Hears every process's DO budget pauses on one connection (PostgreSQL LISTEN).

A 429 (or an exhausted ratelimit-remaining) seen by any process pauses that
account's budget in every process: the pausing one writes it to the ledger and
NOTIFYs (shared_budget.py); this listener hands each notice to the budgets of
its account in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

from order_service.provisioning.budget_sql import NOTIFY_CHANNEL

if TYPE_CHECKING:
    from order_service.provisioning.shared_budget import SharedRateBudget

logger = logging.getLogger("order_service.provisioning.budget")

# Listener reconnect back-off after the notification connection is lost.
_LISTEN_RETRY_S = 5.0


class PauseListener:
    """Hears every process's pauses (NOTIFY) on one connection and hands each to the
    budgets of its account; reconnects when cut off."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._budgets: dict[uuid.UUID, set[SharedRateBudget]] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, budget: SharedRateBudget) -> None:
        self._budgets.setdefault(budget.account_id, set()).add(budget)

    def remove(self, budget: SharedRateBudget) -> None:
        self._budgets.get(budget.account_id, set()).discard(budget)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self.run(), name="do-budget-listener"
            )

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def run(self) -> None:
        import asyncpg

        url = self._engine.url.set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        while True:
            connection: Any = None
            lost = asyncio.Event()
            try:
                connection = await asyncpg.connect(dsn, timeout=10)
                connection.add_termination_listener(lambda _c, lost=lost: lost.set())
                await connection.add_listener(NOTIFY_CHANNEL, self._on_notify)
                await lost.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("DigitalOcean budget: pause listener lost (%s); retrying", exc)
            finally:
                if connection is not None and not connection.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.shield(connection.close(timeout=2))
            await asyncio.sleep(_LISTEN_RETRY_S)

    def _on_notify(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        account, _, left = payload.partition(" ")
        try:
            account_id, seconds = uuid.UUID(account), float(left)
        except ValueError:
            return
        for budget in list(self._budgets.get(account_id, ())):
            budget.heard_pause(seconds)
