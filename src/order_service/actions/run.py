"""One worker's pass over one server action: what every kind of action shares.

A run carries its action to COMPLETED or FAILED, or postpones it (the
droplet is busy, its account cannot be asked) for a later scan. The kinds
are subclasses, each in the module of its job: `droplet_action.py` (power
changes, reboot, rebuild: one DO action), `destroy.py` and `resize.py`.
Their common loop is `start()`: take the action, find the droplet and its
account's client, then `step()` until the action ends, with the shared
handling of DO's answers (busy, account refused, gone, refused, unreachable).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from order_service.accounts.models import DEFAULT_ACCOUNT_ID
from order_service.actions.store import ActionStore, DropletRef
from order_service.db import utcnow
from order_service.orders.states import ActionStatus, ActionType
from order_service.provisioning.digitalocean import (
    DigitalOceanAccountError,
    DigitalOceanBusyError,
    DigitalOceanClient,
    DigitalOceanNotFoundError,
    DigitalOceanPermanentError,
    DigitalOceanUnavailableError,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

logger = logging.getLogger("order_service.actions")

ACTION_FAILED = "ACTION_FAILED"
ACTION_TIMEOUT = "ACTION_TIMEOUT"
DIGITALOCEAN_UNAVAILABLE = "DIGITALOCEAN_UNAVAILABLE"
DESTROYED = "destroyed"

# Consecutive DO calls that stayed unreachable (each already retried by the client).
UNAVAILABLE_LIMIT = 3
# An action whose account refuses its token looks again this late by itself; the
# account turning healthy wakes it sooner.
ACCOUNT_RETRY_S = 60.0


@dataclass(frozen=True)
class ActionsConfig:
    poll_interval_s: float
    timeout: timedelta
    lease_s: float = 30.0
    # A suspension's SHUTDOWN gives up this long after it was requested: the
    # POWER_OFF queued behind it (SPEC section 9: "only if the droplet is not
    # off within 2 minutes") must not wait for the whole ACTION_TIMEOUT. A
    # RESIZE's shutdown step turns into a hard power_off after it too.
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


class Ended(Exception):
    """The worker is done with the action (finished, or postponed to a later scan)."""


class _AccountClient(Protocol):
    client: DigitalOceanClient


class DropletClients(Protocol):
    """Where the engine gets the client of a droplet's account (accounts.clients)."""

    async def get(self, account_id: uuid.UUID | None) -> _AccountClient: ...

    async def trouble(self, account: Any, error: DigitalOceanAccountError) -> bool: ...


class ActionRun:
    """One worker's pass over one action; `row` mirrors the database row."""

    #: Consecutive unreachable answers before the action fails (None: never; the
    #: kind's own deadlines end it).
    unavailable_limit: int | None = UNAVAILABLE_LIMIT

    def __init__(
        self,
        store: ActionStore,
        accounts: DropletClients,
        config: ActionsConfig,
        sleep: Callable[[float], Awaitable[None]],
        row: dict[str, Any],
    ) -> None:
        self.store = store
        self.accounts = accounts
        self.client: DigitalOceanClient = None  # type: ignore[assignment]  # set by start()
        self.account: Any = None
        self.config = config
        self.sleep = sleep
        self.row = row
        self.type = ActionType(row["type"])
        self.unavailable = 0
        self.droplet = DropletRef(None, None)

    @property
    def id(self) -> uuid.UUID:
        return self.row["id"]

    @property
    def droplet_id(self) -> int:
        assert self.droplet.droplet_id is not None
        return self.droplet.droplet_id

    async def save(self, **values: Any) -> None:
        await self.store.save(self.id, **values)
        self.row.update(values)

    # ------------------------------------------------------------ the loop

    async def start(self) -> None:
        if self.row["status"] == ActionStatus.PENDING.value:
            await self.save(
                status=ActionStatus.IN_PROGRESS.value, started_at=self.row["started_at"] or utcnow()
            )
        self.droplet = await self.store.droplet_of(self.row["order_id"])
        if self.droplet.droplet_id is None or self.droplet.droplet_status == DESTROYED:
            await self.no_droplet()
        await self.prepare()
        await self.use_account()
        while True:
            await self.check_deadline()
            try:
                await self.step()
                self.unavailable = 0
            except DigitalOceanBusyError:
                await self.postpone()
            except DigitalOceanAccountError as exc:
                await self.wait_for_account(exc)
                await self.use_account()
            except DigitalOceanNotFoundError:
                await self.droplet_gone()
            except DigitalOceanPermanentError as exc:
                await self.fail(ACTION_FAILED, exc.message)
            except DigitalOceanUnavailableError as exc:
                # An ambiguous send keeps its intent: the next step asks DO
                # whether it started before sending again.
                self.unavailable += 1
                limit = self.unavailable_limit
                if limit is not None and self.unavailable >= limit:
                    await self.fail(DIGITALOCEAN_UNAVAILABLE, exc.message)
                self.log("DigitalOcean unavailable, trying again: %s", exc.message)
                await self.sleep(self.config.poll_interval_s)

    async def prepare(self) -> None:
        """What the kind reads before its first step (nothing by default)."""

    async def step(self) -> None:
        """One step towards the end; ends the run by raising (finish, fail, postpone)."""
        raise NotImplementedError

    async def no_droplet(self) -> NoReturn:
        await self.fail(ACTION_FAILED, "The order has no droplet")

    async def droplet_gone(self) -> NoReturn:
        await self.fail(ACTION_FAILED, f"Droplet {self.droplet.droplet_id} no longer exists")

    async def check_deadline(self) -> None:
        started = self.row["started_at"]
        if started is not None and utcnow() >= started + self.config.timeout:
            await self.last_look()
            await self.fail(
                ACTION_TIMEOUT,
                f"{self.type.value} was not done within "
                f"{self.config.timeout.total_seconds():g}s of its start",
            )

    async def last_look(self) -> None:
        """Past the deadline, the kind may ask DO once more (SPEC section 7)."""

    # ------------------------------------------------------------ accounts

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
        raise Ended

    # ------------------------------------------------------------ endings

    async def postpone(self) -> NoReturn:
        """The droplet is busy with another event: try later.

        The 422 refused this request, but the intent stays: if the busy event
        is an earlier send of this very action that DO did not list yet, the
        next attempt finds it in the action list instead of sending again.
        """
        await self.store.postpone(self.id, {"next_attempt_at": utcnow() + self.config.busy_delay})
        self.log("droplet busy with another event; trying again later")
        raise Ended

    async def finish(
        self,
        status: ActionStatus,
        *,
        error_code: str | None = None,
        error_message: str | None = None,
        droplet_status: str | None = None,
        droplet_size: str | None = None,
    ) -> NoReturn:
        await self.store.finish(
            self.row,
            status=status,
            error_code=error_code,
            error_message=error_message,
            droplet_status=droplet_status,
            droplet_size=droplet_size,
        )
        self.log("%s %s", self.type.value, status.value)
        raise Ended

    async def fail(self, code: str, message: str, **values: Any) -> NoReturn:
        logger.warning(
            "server action %s failed: %s %s",
            self.type.value,
            code,
            message,
            extra={"order_id": str(self.row["order_id"]), "action_id": str(self.id)},
        )
        await self.finish(ActionStatus.FAILED, error_code=code, error_message=message, **values)

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
