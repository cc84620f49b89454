"""The server-actions engine: PENDING actions become DigitalOcean droplet actions.

Server actions are one kind of work on the one engine (`engine/`): an
`ActionStore` leases rows of server_actions and a `WorkRunner` starts one
worker per claimed action. A worker carries its action to COMPLETED or
FAILED, and finishes by checking DigitalOcean (the droplet's status, a 404),
not its memory. Each kind of action is a job of its own module, on the
shared loop of `run.py` (the crash rules: docs/architecture.md has the table):

* `droplet_action.py` - power changes, reboot, rebuild: `intent_at` is
  committed *before* the request is sent, and a worker that finds an intent
  without a DO action id asks DO first (the droplet's end state, then its
  action list), so a SIGKILL at any moment never doubles a reboot or a rebuild.
* `destroy.py` - DELETE is idempotent; the action is done when DO answers 404.
* `resize.py` - a plan change's shutdown, resize and power on, its step
  reached stored on the action; every send inside a step by the same rule.

Every DO call goes to the droplet's own account (accounts/: its token and its
budget). When that account cannot be asked (its token refused), the action
waits and resumes once the account is healthy again; past ACTION_TIMEOUT the
droplet is looked at once more before the action gives up (SPEC section 7:
the deadline is judged on DO's word).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Final

from sqlalchemy import RowMapping

from order_service.actions.destroy import DestroyRun, delete_until_gone
from order_service.actions.droplet_action import SingleActionRun
from order_service.actions.resize import ResizeRun
from order_service.actions.run import ActionRun, ActionsConfig, DropletClients, Ended
from order_service.actions.store import ActionStore
from order_service.engine import WorkRunner, wakeup
from order_service.orders.states import ActionType

__all__ = ["ActionEngine", "ActionsConfig", "DropletClients", "delete_until_gone"]

CLAIM_BATCH = 200
#: The job of each kind of action.
JOBS: Final[dict[ActionType, type[ActionRun]]] = {
    ActionType.DESTROY: DestroyRun,
    ActionType.RESIZE: ResizeRun,
}


class ActionEngine:
    """Works PENDING/IN_PROGRESS server actions of every order, one per order at a time."""

    def __init__(
        self,
        store: ActionStore,
        accounts: DropletClients,
        config: ActionsConfig,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self._accounts = accounts
        self._config = config
        self._sleep = sleep
        self.runner = WorkRunner(
            "actions",
            store,
            self._work,
            interval_s=config.poll_interval_s,
            lease_s=config.lease_s,
            batch=CLAIM_BATCH,
            max_in_flight=config.max_in_flight,
        )

    def start(self) -> None:
        self.runner.start()
        wakeup.register(wakeup.ACTIONS, self.runner.wake)

    def wake(self) -> None:
        self.runner.wake()

    async def stop(self) -> None:
        wakeup.unregister(wakeup.ACTIONS, self.runner.wake)
        await self.runner.stop()

    async def _work(self, row: RowMapping) -> None:
        job = JOBS.get(ActionType(row["type"]), SingleActionRun)
        run = job(self._store, self._accounts, self._config, self._sleep, dict(row))
        with contextlib.suppress(Ended):
            await run.start()
