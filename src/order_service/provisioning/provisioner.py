"""The background provisioner: paid orders become droplets.

Durability lives in the database, not in memory. Each scan (every poll
interval, or at once when this process took a payment) claims due,
unfinished tasks with a lease and starts a worker coroutine for each. A
worker:

1. makes sure the order has exactly one droplet (creation.py): it takes a
   slot in the DO account with the most room, adopts a droplet found by the
   order's tag when a create may already have been sent, else records the
   intent and creates it; with no room anywhere the task waits;
2. follows the droplet through its account's `DropletWatcher` until it is
   active (order ACTIVE), errored or gone (FAILED), or the deadline passes
   (FAILED, PROVISIONING_TIMEOUT; the droplet is kept). The deadline is
   judged on DO's word: a task found past it looks at the droplet once more.

Leases are renewed while workers run and released on shutdown; a process
that dies leaves leases that expire, and any replica then takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, NoReturn

from sqlalchemy import RowMapping

from order_service import metrics
from order_service.access.account_keys import AccountKeys
from order_service.accounts.clients import AccountClients
from order_service.accounts.models import DEFAULT_ACCOUNT_ID
from order_service.db import utcnow
from order_service.engine import WorkRunner, wakeup
from order_service.provisioning.creation import (
    DIGITALOCEAN_UNAVAILABLE,
    PROVISIONING_FAILED,
    PROVISIONING_TIMEOUT,
    DropletCreation,
    Finished,
)
from order_service.provisioning.digitalocean import (
    DigitalOceanAccountError,
    DigitalOceanError,
    DigitalOceanPermanentError,
)
from order_service.provisioning.store import TaskStore
from order_service.provisioning.work import ProvisionerConfig, Work, droplet_values
from order_service.secret_box import SecretBox

logger = logging.getLogger("order_service.provisioning")

__all__ = [
    "DIGITALOCEAN_UNAVAILABLE",
    "PROVISIONING_FAILED",
    "PROVISIONING_TIMEOUT",
    "Provisioner",
]

# DO may not show a droplet for a moment after its 202 (eventual consistency).
NOT_FOUND_LIMIT = 3
# Consecutive checks DO stayed unreachable (each already retried by the client).
UNAVAILABLE_LIMIT = 3
CLAIM_BATCH = 500


class Provisioner(DropletCreation):
    def __init__(
        self,
        store: TaskStore,
        accounts: AccountClients,
        config: ProvisionerConfig,
        *,
        checker: Any = None,
        keys: AccountKeys | None = None,
        box: SecretBox | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self._accounts = accounts
        self._config = config
        self._checker = checker
        # The SSH keys known in each account, and SECRETS_KEY's box for the
        # first-access passwords (SPEC section 14).
        self._keys = keys
        self._box = box
        self._sleep_for = sleep
        self._runner = WorkRunner(
            "provisioning",
            store,
            self._run_worker,
            interval_s=config.poll_interval_s,
            lease_s=config.lease_s,
            batch=CLAIM_BATCH,
            on_count=metrics.TASKS_IN_FLIGHT.set,
        )

    async def _sleep(self, seconds: float) -> None:
        await self._sleep_for(seconds)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._runner.start()
        # A payment committed in this process wakes the runner (on its own loop).
        wakeup.register(wakeup.PROVISIONING, self._runner.wake)

    async def stop(self) -> None:
        """Stop taking work, stop the workers, give the leases back."""
        wakeup.unregister(wakeup.PROVISIONING, self._runner.wake)
        await self._runner.stop()

    async def scan(self) -> int:
        """Claim due tasks and start a worker for each; returns how many started."""
        return await self._runner.scan()

    # ------------------------------------------------------------ a worker

    async def _run_worker(self, row: RowMapping) -> None:
        """Work one claimed task to its end (the runner handles leases and crashes)."""
        work = Work.from_row(row)
        try:
            if work.droplet_id is not None and work.requested_at is None:
                await self._resume_retried(work)
            if work.droplet_id is None:
                await self._ensure_droplet(work)
            while True:
                await self._check(work)
        except Finished:
            pass

    async def _check(self, work: Work) -> None:
        """One check of the droplet: finish the task, or record what DO said.

        Past the deadline the droplet is still looked at once (SPEC section 7: the
        deadline is judged on DO's word): a process that was down longer than the
        deadline finds an active droplet and makes the order ACTIVE.
        """
        assert work.droplet_id is not None and work.requested_at is not None
        overdue = utcnow() >= work.requested_at + self._config.deadline
        account = await self._client_of(work)
        try:
            droplet = await account.watcher.observe(work.droplet_id, work.cohort)
        except DigitalOceanAccountError as exc:
            await self._wait_for_account(work, exc, account)
            return  # the refusal was stale (a new token): look again now
        except DigitalOceanPermanentError as exc:
            if overdue:
                await self._timeout(work)
            await self._fail(work, PROVISIONING_FAILED, exc.message)
        except DigitalOceanError as exc:
            work.unavailable += 1
            if overdue:
                await self._timeout(work)
            if work.unavailable >= UNAVAILABLE_LIMIT:
                await self._fail(work, DIGITALOCEAN_UNAVAILABLE, exc.message)
            return
        work.unavailable = 0
        work.attempts += 1
        values = droplet_values(droplet) if droplet is not None else None
        if droplet is not None and droplet.status == "active":
            await self._succeed(work, values or {})
        if overdue:
            await self._timeout(work, values)
        if droplet is None:
            await self._not_found(work)
            return
        was_missing = work.not_found > 0
        work.not_found = 0
        work.first_not_found_at = None
        assert values is not None
        if droplet.status == "errored":
            await self._fail(
                work,
                PROVISIONING_FAILED,
                f"Droplet {droplet.id} errored while building",
                values,
            )
        # A check that sees what was already written (a droplet still `new`)
        # writes nothing: one write per droplet per poll was half the duties'
        # interpreter time in a storm (docs/benchmarks.md). `attempts` goes to
        # the row with the next change and at the end; the deadline is timed
        # from requested_at, so a count lost in a crash moves nothing.
        if values == work.written and not was_missing:
            return
        await self._store.save(work.id, attempts=work.attempts, not_found_count=0, **values)
        work.written = values

    async def _not_found(self, work: Work) -> None:
        """DO does not show the droplet: an errored build, a vanished droplet, or lag."""
        work.not_found += 1
        now = utcnow()
        work.first_not_found_at = work.first_not_found_at or now
        # A failed build shows as an errored create action: that is certain,
        # so it ends the task at once (one request, only on this rare path).
        if work.create_action_id is not None:
            client = (await self._client_of(work)).client
            with contextlib.suppress(DigitalOceanError):
                if await client.get_action_status(work.create_action_id) == "errored":
                    await self._fail(
                        work,
                        PROVISIONING_FAILED,
                        f"DigitalOcean reports the build of droplet {work.droplet_id} errored",
                        {"droplet_status": "gone"},
                    )
        # Otherwise gone only after NOT_FOUND_LIMIT checks in a row *and* a
        # grace time: with a short poll interval, three checks alone could fall
        # inside DO's eventual-consistency window and give up a live droplet.
        missing_for = (now - work.first_not_found_at).total_seconds()
        if work.not_found < NOT_FOUND_LIMIT or missing_for < self._config.not_found_grace_s:
            await self._store.save(work.id, attempts=work.attempts, not_found_count=work.not_found)
            return
        await self._fail(
            work,
            PROVISIONING_FAILED,
            f"Droplet {work.droplet_id} disappeared (not found {work.not_found} times "
            f"over {missing_for:.0f}s)",
            {"droplet_status": "gone"},
        )

    # ------------------------------------------------------------ endings

    async def _succeed(self, work: Work, values: dict[str, Any]) -> NoReturn:
        await self._store.finish(
            work.id,
            work.order_id,
            succeeded=True,
            values={**values, "attempts": work.attempts, "not_found_count": 0},
            reason=f"Droplet {work.droplet_id} is active",
        )
        self._observe_duration(work, "success")
        self._log(work, "droplet %s active", work.droplet_id)
        raise Finished

    async def _timeout(self, work: Work, values: dict[str, Any] | None = None) -> NoReturn:
        await self._fail(
            work,
            PROVISIONING_TIMEOUT,
            f"Droplet {work.droplet_id} was not active within "
            f"{self._config.deadline.total_seconds():.0f}s; it is kept, not deleted",
            values,
        )

    async def _fail(
        self, work: Work, code: str, message: str, values: dict[str, Any] | None = None
    ) -> NoReturn:
        await self._store.finish(
            work.id,
            work.order_id,
            succeeded=False,
            values={
                **(values or {}),
                "attempts": work.attempts,
                "not_found_count": work.not_found,
                "error_code": code,
                "error_message": message,
            },
            reason=f"{code}: {message}",
        )
        self._observe_duration(work, "failed")
        logger.warning(
            "provisioning failed: %s %s",
            code,
            message,
            extra={"order_id": str(work.order_id), "droplet_id": work.droplet_id},
        )
        raise Finished

    async def _wait_for_account(
        self, work: Work, error: DigitalOceanAccountError, account: Any = None
    ) -> None:
        """The droplet's account cannot be asked now (its token refused, or none): the
        task waits - past its deadline too, since only DO can say how the droplet
        is - and resumes when the account is healthy again (accounts/health.py).
        Returns only when the refusal was stale (the account has a new token)."""
        if await self._accounts.trouble(account or work.account_id or DEFAULT_ACCOUNT_ID, error):
            return
        retry_at = utcnow() + timedelta(seconds=self._config.wait_retry_s)
        await self._store.postpone(work.id, retry_at)
        self._log(work, "account cannot be used, the task waits: %s", error.message)
        raise Finished

    def _observe_duration(self, work: Work, outcome: str) -> None:
        if work.requested_at is not None:
            elapsed = (utcnow() - work.requested_at).total_seconds()
            metrics.PROVISIONING_DURATION.labels(outcome).observe(max(elapsed, 0.0))
