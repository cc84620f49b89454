"""The server-actions engine: PENDING actions become DigitalOcean droplet actions.

Server actions are one kind of work on the one engine (`engine/`): an
`ActionStore` leases rows of server_actions and a `WorkRunner` starts one
worker per claimed action. A worker carries its action to COMPLETED or
FAILED, and finishes by checking DigitalOcean (the droplet's status, a 404),
not its memory. The crash rules (docs/architecture.md has the table):

* power changes, reboot, rebuild: `intent_at` is committed *before* the
  request is sent. A worker that finds an intent without a DO action id
  (the process died, or the answer was lost) asks DO first: for a power
  change the droplet may already show the end state; otherwise the droplet's
  action list shows whether an action of that type started at/after the
  intent, and that one is followed instead of sending again. So a SIGKILL at
  any moment never doubles a reboot or a rebuild.
* destroy: DELETE is idempotent; the action is done when DO answers 404.

Every DO call goes to the droplet's own account (accounts/: its token and its
budget). When that account cannot be asked (its token refused), the action
waits and resumes once the account is healthy again; past ACTION_TIMEOUT the
droplet is looked at once more before the action gives up (SPEC section 7:
the deadline is judged on DO's word).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, NoReturn, Protocol

from sqlalchemy import RowMapping

from order_service.accounts.models import DEFAULT_ACCOUNT_ID
from order_service.actions.store import ActionStore, DropletRef
from order_service.actions.writer import SYSTEM
from order_service.db import utcnow
from order_service.engine import WorkRunner, wakeup
from order_service.orders.states import ActionStatus, ActionType
from order_service.provisioning.digitalocean import (
    DigitalOceanAccountError,
    DigitalOceanBusyError,
    DigitalOceanClient,
    DigitalOceanError,
    DigitalOceanNotFoundError,
    DigitalOceanPermanentError,
    DigitalOceanUnavailableError,
)

logger = logging.getLogger("order_service.actions")

ACTION_FAILED = "ACTION_FAILED"
ACTION_TIMEOUT = "ACTION_TIMEOUT"
DIGITALOCEAN_UNAVAILABLE = "DIGITALOCEAN_UNAVAILABLE"

#: The DigitalOcean action type of each server action (DESTROY is a DELETE).
DO_TYPE: Final = {
    ActionType.REBOOT: "reboot",
    ActionType.SHUTDOWN: "shutdown",
    ActionType.POWER_OFF: "power_off",
    ActionType.POWER_ON: "power_on",
    ActionType.REBUILD: "rebuild",
}
#: The droplet's status once the action is done (SPEC sections 7 and 10).
END_STATUS: Final = {
    ActionType.REBOOT: "active",
    ActionType.SHUTDOWN: "off",
    ActionType.POWER_OFF: "off",
    ActionType.POWER_ON: "active",
    ActionType.REBUILD: "active",
}
# Whose end state can already hold: then nothing is sent. A reboot or a
# rebuild always acts.
POWER_CHANGES: Final = frozenset({ActionType.SHUTDOWN, ActionType.POWER_OFF, ActionType.POWER_ON})
DESTROYED = "destroyed"

# Consecutive DO calls that stayed unreachable (each already retried by the client).
UNAVAILABLE_LIMIT = 3
# DO's clock and ours differ a little: an action DO says started this much
# before our intent still counts as ours.
CLOCK_SKEW = timedelta(seconds=5)
# GETs after a DELETE before it is sent again (DO may take a moment to 404).
DELETE_CHECKS = 20
# An action whose account refuses its token looks again this late by itself; the
# account turning healthy wakes it sooner.
ACCOUNT_RETRY_S = 60.0
CLAIM_BATCH = 200


@dataclass(frozen=True)
class ActionsConfig:
    poll_interval_s: float
    timeout: timedelta
    lease_s: float = 30.0
    # A suspension's SHUTDOWN gives up this long after it was requested: the
    # POWER_OFF queued behind it (SPEC section 9: "only if the droplet is not
    # off within 2 minutes") must not wait for the whole ACTION_TIMEOUT.
    shutdown_grace: timedelta | None = None
    # Actions one process works at once. Every action spends a few DO requests
    # (look, send, follow, look) from one budget of 225 a minute: started all
    # at once, a backlog of 10,000 suspensions had each action wait behind
    # every other's next request, so none finished for hours (and each one's
    # ACTION_TIMEOUT ran from its start meanwhile). A few at a time finish at
    # the budget's pace, and a new order's provisioning still gets requests.
    max_in_flight: int = 20

    @property
    def settle_s(self) -> float:
        """How long after a possibly-sent request DO's action list is trusted to show it."""
        return min(3.0, 2 * self.poll_interval_s)

    @property
    def busy_delay(self) -> timedelta:
        """The wait before trying again a droplet that kept answering "pending event"."""
        return timedelta(seconds=max(self.poll_interval_s, 1.0))


async def delete_until_gone(
    client: DigitalOceanClient,
    droplet_id: int,
    *,
    poll_s: float,
    checks: int = DELETE_CHECKS,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> bool:
    """DELETE the droplet, then GET it until DO answers 404 (True), at most `checks` times.

    Safe to repeat after any crash: a second DELETE of a deleted droplet is
    a 404, the same end state. Used by DESTROY and by a retried provisioning
    that must get rid of an errored droplet before creating a new one.
    """
    if not await client.delete_droplet(droplet_id):
        return True
    for _ in range(checks):
        await sleep(poll_s)
        if await client.get_droplet(droplet_id) is None:
            return True
    return False


class _Ended(Exception):
    """The worker is done with the action (finished, or postponed to a later scan)."""


class _AccountClient(Protocol):
    client: DigitalOceanClient


class DropletClients(Protocol):
    """Where the engine gets the client of a droplet's account (accounts.clients)."""

    async def get(self, account_id: uuid.UUID | None) -> _AccountClient: ...

    async def trouble(self, account: Any, error: DigitalOceanAccountError) -> bool: ...


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
        run = _Run(self, dict(row))
        with contextlib.suppress(_Ended):
            await run.start()


class _Run:
    """One worker's pass over one action; `row` mirrors the database row."""

    def __init__(self, engine: ActionEngine, row: dict[str, Any]) -> None:
        self.store = engine._store
        self.accounts = engine._accounts
        self.client: DigitalOceanClient = None  # type: ignore[assignment]  # set by start()
        self.account: Any = None
        self.config = engine._config
        self.sleep = engine._sleep
        self.row = row
        self.type = ActionType(row["type"])
        self.unavailable = 0
        self.droplet = DropletRef(None, None)

    @property
    def id(self) -> uuid.UUID:
        return self.row["id"]

    async def save(self, **values: Any) -> None:
        await self.store.save(self.id, **values)
        self.row.update(values)

    async def start(self) -> None:
        if self.row["status"] == ActionStatus.PENDING.value:
            await self.save(
                status=ActionStatus.IN_PROGRESS.value, started_at=self.row["started_at"] or utcnow()
            )
        self.droplet = await self.store.droplet_of(self.row["order_id"])
        if self.droplet.droplet_id is None or self.droplet.droplet_status == DESTROYED:
            if self.type is ActionType.DESTROY:
                status = self.droplet.droplet_status
                await self.finish(ActionStatus.COMPLETED, droplet_status=status)
            await self.fail(ACTION_FAILED, "The order has no droplet")
        await self.use_account()
        while True:
            await self.check_deadline()
            try:
                if self.type is ActionType.DESTROY:
                    await self.destroy_step()
                else:
                    await self.action_step()
                self.unavailable = 0
            except DigitalOceanBusyError:
                await self.postpone()
            except DigitalOceanAccountError as exc:
                await self.wait_for_account(exc)
                await self.use_account()
            except DigitalOceanNotFoundError:
                if self.type is ActionType.DESTROY:
                    await self.finish(ActionStatus.COMPLETED, droplet_status=DESTROYED)
                await self.fail(
                    ACTION_FAILED, f"Droplet {self.droplet.droplet_id} no longer exists"
                )
            except DigitalOceanPermanentError as exc:
                await self.fail(ACTION_FAILED, exc.message)
            except DigitalOceanUnavailableError as exc:
                # An ambiguous send keeps its intent: the next step asks DO
                # whether it started before sending again.
                self.unavailable += 1
                if self.unavailable >= UNAVAILABLE_LIMIT:
                    await self.fail(DIGITALOCEAN_UNAVAILABLE, exc.message)
                self.log("DigitalOcean unavailable, trying again: %s", exc.message)
                await self.sleep(self.config.poll_interval_s)

    # ------------------------------------------------------------ droplet actions

    async def action_step(self) -> None:
        if self.row["do_action_id"] is not None:
            await self.follow()
        elif self.row["intent_at"] is not None:
            await self.recover()
        else:
            if self.type in POWER_CHANGES:
                await self.complete_if_end_state()
            await self.send()

    async def complete_if_end_state(self) -> None:
        droplet = await self.client.get_droplet(self.droplet_id)
        if droplet is None:
            await self.fail(ACTION_FAILED, f"Droplet {self.droplet_id} no longer exists")
        if droplet.status == END_STATUS[self.type]:
            self.log("droplet is already %s: nothing to send", droplet.status)
            await self.finish(ActionStatus.COMPLETED, droplet_status=droplet.status)

    async def send(self) -> None:
        # The intent commits before the request leaves: after a crash, DO is
        # asked before anything is sent again.
        await self.save(intent_at=utcnow(), attempts=(self.row["attempts"] or 0) + 1)
        image = self.row["image_slug"] if self.type is ActionType.REBUILD else None
        action = await self.client.post_droplet_action(
            self.droplet_id, DO_TYPE[self.type], image=image
        )
        await self.save(do_action_id=action.id)
        self.log("DigitalOcean %s action %s started", DO_TYPE[self.type], action.id)

    async def recover(self) -> None:
        """An intent without a DO action id: find what was sent, or send it now."""
        intent_at = self.row["intent_at"]
        settle = (intent_at - utcnow()).total_seconds() + self.config.settle_s
        if settle > 0:
            await self.sleep(settle)
        if self.type in POWER_CHANGES:
            await self.complete_if_end_state()
        known = await self.store.known_do_action_ids(self.row["order_id"])
        since = intent_at - CLOCK_SKEW
        for action in await self.client.list_droplet_actions(self.droplet_id):
            if action.type != DO_TYPE[self.type] or action.id in known:
                continue
            started = action.started_at
            if (started is None and action.status == "in-progress") or (
                started is not None and started >= since
            ):
                await self.save(do_action_id=action.id)
                self.log("adopted DigitalOcean action %s sent before a restart", action.id)
                return
        self.log("no %s action reached DigitalOcean: sending it", DO_TYPE[self.type])
        await self.send()

    async def follow(self) -> None:
        action = await self.client.get_action(self.row["do_action_id"])
        if action is None or action.status == "in-progress":
            await self.sleep(self.config.poll_interval_s)
            return
        if action.status == "errored":
            await self.fail(
                ACTION_FAILED,
                f"DigitalOcean reports the {DO_TYPE[self.type]} action {action.id} "
                f"on droplet {self.droplet_id} errored",
            )
        droplet = await self.client.get_droplet(self.droplet_id)
        if droplet is None:
            await self.fail(ACTION_FAILED, f"Droplet {self.droplet_id} no longer exists")
        if droplet.status == END_STATUS[self.type]:
            await self.finish(ActionStatus.COMPLETED, droplet_status=droplet.status)
        # The action completed but the droplet does not show it yet: look again.
        await self.sleep(self.config.poll_interval_s)

    # ------------------------------------------------------------ destroy

    async def destroy_step(self) -> None:
        if self.row["intent_at"] is None:
            await self.save(intent_at=utcnow(), attempts=(self.row["attempts"] or 0) + 1)
        gone = await delete_until_gone(
            self.client, self.droplet_id, poll_s=self.config.poll_interval_s, sleep=self.sleep
        )
        if gone:
            self.log("droplet %s destroyed", self.droplet_id)
            await self.finish(ActionStatus.COMPLETED, droplet_status=DESTROYED)

    # ------------------------------------------------------------ endings

    @property
    def droplet_id(self) -> int:
        assert self.droplet.droplet_id is not None
        return self.droplet.droplet_id

    async def check_deadline(self) -> None:
        started = self.row["started_at"]
        if started is not None and utcnow() >= started + self.config.timeout:
            await self.last_look()
            await self.fail(
                ACTION_TIMEOUT,
                f"{self.type.value} was not done within "
                f"{self.config.timeout.total_seconds():g}s of its start",
            )
        grace = self.config.shutdown_grace
        if (
            grace is not None
            and self.type is ActionType.SHUTDOWN
            and self.row["requested_by"] == SYSTEM
            and utcnow() >= self.row["created_at"] + grace
        ):
            await self.fail(
                ACTION_TIMEOUT,
                f"The droplet was not off within {grace.total_seconds():g}s of the graceful "
                "shutdown; the hard POWER_OFF queued behind it takes over",
            )

    async def last_look(self) -> None:
        """Past the deadline, DO is asked once more (SPEC section 7): an action that DO
        finished while nobody watched (the process was down) completes instead of
        failing. Only a sent action can have finished, and only its end state says so."""
        if self.type is ActionType.DESTROY or (
            self.row["do_action_id"] is None and self.type not in POWER_CHANGES
        ):
            return
        with contextlib.suppress(DigitalOceanError):
            if self.row["do_action_id"] is not None:
                action = await self.client.get_action(self.row["do_action_id"])
                if action is None or action.status != "completed":
                    return
            droplet = await self.client.get_droplet(self.droplet_id)
            if droplet is not None and droplet.status == END_STATUS[self.type]:
                self.log("done by DO's word, though past the deadline")
                await self.finish(ActionStatus.COMPLETED, droplet_status=droplet.status)

    async def use_account(self) -> None:
        """The client of the droplet's own account (its token, its budget)."""
        while True:
            try:
                self.account = await self.accounts.get(self.droplet.account_id)
                self.client = self.account.client
                return
            except DigitalOceanAccountError as exc:
                await self.wait_for_account(exc)

    async def wait_for_account(self, error: DigitalOceanAccountError) -> None:
        """The droplet's account cannot be asked (its token refused): the action waits
        and resumes when the account is healthy again (accounts/health.py). Returns
        only when the refusal was stale (the account has a new token: try again)."""
        target = self.account or self.droplet.account_id or DEFAULT_ACCOUNT_ID
        if await self.accounts.trouble(target, error):
            return
        delay = timedelta(seconds=max(self.config.poll_interval_s, ACCOUNT_RETRY_S))
        await self.store.postpone(self.id, {"next_attempt_at": utcnow() + delay})
        self.log("the droplet's account cannot be used; waiting: %s", error.message)
        raise _Ended

    async def postpone(self) -> NoReturn:
        """The droplet is busy with another event: try later.

        The 422 refused this request, but the intent stays: if the busy event
        is an earlier send of this very action that DO did not list yet, the
        next attempt finds it in the action list instead of sending again.
        """
        await self.store.postpone(self.id, {"next_attempt_at": utcnow() + self.config.busy_delay})
        self.log("droplet busy with another event; trying again later")
        raise _Ended

    async def finish(
        self,
        status: ActionStatus,
        *,
        error_code: str | None = None,
        error_message: str | None = None,
        droplet_status: str | None = None,
    ) -> NoReturn:
        await self.store.finish(
            self.row,
            status=status,
            error_code=error_code,
            error_message=error_message,
            droplet_status=droplet_status,
        )
        self.log("%s %s", self.type.value, status.value)
        raise _Ended

    async def fail(self, code: str, message: str) -> NoReturn:
        logger.warning(
            "server action %s failed: %s %s",
            self.type.value,
            code,
            message,
            extra={"order_id": str(self.row["order_id"]), "action_id": str(self.id)},
        )
        await self.finish(ActionStatus.FAILED, error_code=code, error_message=message)

    def log(self, message: str, *args: Any) -> None:
        logger.info(
            message,
            *args,
            extra={
                "order_id": str(self.row["order_id"]),
                "action_id": str(self.id),
                "droplet_id": self.droplet.droplet_id,
            },
        )
