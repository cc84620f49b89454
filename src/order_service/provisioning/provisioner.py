"""The background provisioner: paid orders become droplets.

Durability lives in the database, not in memory. Each scan (every poll
interval, or at once when this process took a payment) claims unfinished
tasks with a lease and starts a worker coroutine for each. A worker:

1. makes sure the order has exactly one droplet: it adopts one found by the
   order's tag when a create may already have been sent, else records the
   intent and creates it;
2. follows the droplet through the shared `DropletWatcher` until it is
   active (order ACTIVE), errored or gone (FAILED), or the deadline passes
   (FAILED, PROVISIONING_TIMEOUT; the droplet is kept).

Leases are renewed while workers run and released on shutdown; a process
that dies leaves leases that expire, and any replica then takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

from sqlalchemy import RowMapping

from order_service import metrics
from order_service.actions.engine import delete_until_gone
from order_service.db import utcnow
from order_service.engine import WorkRunner, wakeup
from order_service.provisioning.digitalocean import (
    DigitalOceanClient,
    DigitalOceanError,
    DigitalOceanPermanentError,
    DigitalOceanUnavailableError,
    Droplet,
)
from order_service.provisioning.lookup import ExistingDroplets, order_tag
from order_service.provisioning.store import TaskStore
from order_service.provisioning.watcher import DropletWatcher
from order_service.provisioning.work import (
    ProvisionerConfig,
    Work,
    cohort_tag,
    droplet_name,
    droplet_values,
)

logger = logging.getLogger("order_service.provisioning")

PROVISIONING_FAILED = "PROVISIONING_FAILED"
DIGITALOCEAN_UNAVAILABLE = "DIGITALOCEAN_UNAVAILABLE"
PROVISIONING_TIMEOUT = "PROVISIONING_TIMEOUT"

# DO may not show a droplet for a moment after its 202 (eventual consistency).
NOT_FOUND_LIMIT = 3
# Consecutive checks DO stayed unreachable (each already retried by the client).
UNAVAILABLE_LIMIT = 3
# Consecutive creates that failed without a clear answer (each followed by a
# lookup by tag before the next one).
CREATE_FAILURE_LIMIT = 5
CLAIM_BATCH = 500


class _Finished(Exception):
    """The task reached its end; raised to unwind the worker."""


class Provisioner:
    def __init__(
        self,
        store: TaskStore,
        client: DigitalOceanClient,
        config: ProvisionerConfig,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self._client = client
        self._config = config
        self._sleep = sleep
        self._watcher = DropletWatcher(client, config.poll_interval_s)
        self._existing = ExistingDroplets(client)
        self._runner = WorkRunner(
            "provisioning",
            store,
            self._run_worker,
            interval_s=config.poll_interval_s,
            lease_s=config.lease_s,
            batch=CLAIM_BATCH,
            on_count=metrics.TASKS_IN_FLIGHT.set,
        )
        self._watch_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._runner.start()
        self._watch_task = asyncio.create_task(self._watcher.run(), name="provisioner-watch")
        # A payment committed in this process wakes the runner (on its own loop).
        wakeup.register(wakeup.PROVISIONING, self._runner.wake)

    async def stop(self) -> None:
        """Stop taking work, stop the workers, give the leases back."""
        wakeup.unregister(wakeup.PROVISIONING, self._runner.wake)
        if self._watch_task is not None:
            self._watch_task.cancel()
            await asyncio.gather(self._watch_task, return_exceptions=True)
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
        except _Finished:
            pass

    async def _resume_retried(self, work: Work) -> None:
        """An ops retry of a task that has a droplet: keep it if DO still has it and
        it is sound; destroy a broken one (errored) and wait for DO's 404 first.

        Never two live droplets: the new one is created only once DO answers
        404 for the old one. The old id stays on the row until the new droplet
        is recorded, so a crash anywhere in between comes back here: the GET
        (404, or the broken droplet again) decides, and DELETE is idempotent.
        """
        now = utcnow()
        old_id = work.droplet_id or 0
        destroyed = False
        try:
            droplet = await self._client.get_droplet(old_id)
            if droplet is not None and await self._is_broken(work, droplet):
                self._log(work, "retry: droplet %s is broken; destroying it first", old_id)
                if not await delete_until_gone(
                    self._client, old_id, poll_s=self._config.poll_interval_s, sleep=self._sleep
                ):
                    await self._fail(
                        work,
                        DIGITALOCEAN_UNAVAILABLE,
                        f"Droplet {old_id} still exists after DELETE; retry later",
                    )
                droplet, destroyed = None, True
        except DigitalOceanPermanentError as exc:
            await self._fail(work, PROVISIONING_FAILED, exc.message)
        except DigitalOceanUnavailableError as exc:
            await self._fail(work, DIGITALOCEAN_UNAVAILABLE, exc.message)
        work.requested_at = now
        if droplet is not None:
            await self._store.save(work.id, status="IN_PROGRESS", requested_at=now, started_at=now)
            self._log(work, "retry keeps droplet %s", droplet.id)
            return
        # The droplet is gone: provision a new one (after a lookup by tag).
        self._log(work, "retry: droplet %s is gone, creating a new one", old_id)
        work.replaced.add(old_id)
        work.droplet_id = None
        work.create_intent_at = work.create_intent_at or now
        await self._store.save(
            work.id,
            status="IN_PROGRESS",
            droplet_status="destroyed" if destroyed else "gone",
        )

    async def _is_broken(self, work: Work, droplet: Droplet) -> bool:
        """An errored droplet, or one whose build DO reports errored (SPEC section 10)."""
        if droplet.status == "errored":
            return True
        if droplet.status != "new" or work.create_action_id is None:
            return False
        return await self._client.get_action_status(work.create_action_id) == "errored"

    async def _ensure_droplet(self, work: Work) -> None:
        """Adopt the order's droplet if DO has one, else create one.

        DO is asked before *every* create, the first included (SPEC section 7):
        the intent row is not enough when the database lost its last commits
        (a restored backup, a failover) and DO already built the droplet.
        """
        failures = 0
        while work.droplet_id is None:
            if await self._adopt(work):
                return
            now = utcnow()
            tags = ["order-service", order_tag(work.order_id), cohort_tag(now)]
            await self._store.start_create(work.id, now)
            work.create_intent_at = now
            try:
                created = await self._client.create_droplet(
                    name=droplet_name(work.order_id),
                    region=self._config.region,
                    size=work.size,
                    image=work.image,
                    tags=tags,
                )
            except DigitalOceanPermanentError as exc:
                await self._fail(work, PROVISIONING_FAILED, exc.message)
            except DigitalOceanUnavailableError as exc:
                failures += 1
                if failures >= CREATE_FAILURE_LIMIT:
                    await self._fail(work, DIGITALOCEAN_UNAVAILABLE, exc.message)
                self._log(work, "droplet create failed, will look up and retry: %s", exc.message)
                # The create may have reached DO only now (after a budget wait
                # and a slow answer): the settle time before the lookup counts
                # from here, not from the recorded intent.
                work.create_intent_at = utcnow()
                await self._sleep(self._backoff(failures))
                continue
            await self._record_droplet(work, created.droplet, created.create_action_id, tags)
            self._log(work, "droplet %s requested", created.droplet.id)

    async def _adopt(self, work: Work) -> bool:
        """Find a droplet an earlier create made (crash, retry, takeover, lost commit)
        and keep it; one listing by the order's tag."""
        if work.create_intent_at is not None:
            # A create that may have just been sent needs a moment to be listed.
            settle = (work.create_intent_at - utcnow()).total_seconds() + self._config.settle_s
            if settle > 0:
                await self._sleep(settle)
        try:
            # Coalesced with the other workers asking now (lookup.py): a storm's
            # lookups cost one listing, not one request per order.
            found = await self._existing.find(work.order_id)
        except DigitalOceanPermanentError as exc:
            await self._fail(work, PROVISIONING_FAILED, exc.message)
        except DigitalOceanUnavailableError as exc:
            await self._fail(work, DIGITALOCEAN_UNAVAILABLE, exc.message)
        found = [droplet for droplet in found if droplet.id not in work.replaced]
        if not found:
            return False
        found.sort(key=lambda droplet: droplet.id)
        if len(found) > 1:
            logger.error(
                "order has %d droplets; keeping the oldest %s",
                len(found),
                found[0].id,
                extra={"order_id": str(work.order_id)},
            )
        await self._record_droplet(work, found[0], None, list(found[0].tags))
        self._log(work, "adopted existing droplet %s", found[0].id)
        return True

    async def _record_droplet(
        self, work: Work, droplet: Droplet, action_id: int | None, tags: list[str]
    ) -> None:
        work.droplet_id = droplet.id
        work.create_action_id = action_id or work.create_action_id
        work.tags = list(droplet.tags) or tags
        work.requested_at = work.requested_at or utcnow()
        await self._store.save(
            work.id,
            status="IN_PROGRESS",
            create_action_id=work.create_action_id,
            requested_at=work.requested_at,
            started_at=work.requested_at,
            not_found_count=0,
            **{**droplet_values(droplet), "droplet_tags": work.tags},
        )

    async def _check(self, work: Work) -> None:
        """One check of the droplet: finish the task, or record what DO said."""
        assert work.droplet_id is not None and work.requested_at is not None
        if utcnow() >= work.requested_at + self._config.deadline:
            await self._fail(
                work,
                PROVISIONING_TIMEOUT,
                f"Droplet {work.droplet_id} was not active within "
                f"{self._config.deadline.total_seconds():.0f}s; it is kept, not deleted",
            )
        try:
            droplet = await self._watcher.observe(work.droplet_id, work.cohort)
        except DigitalOceanPermanentError as exc:
            await self._fail(work, PROVISIONING_FAILED, exc.message)
        except DigitalOceanError as exc:
            work.unavailable += 1
            if work.unavailable >= UNAVAILABLE_LIMIT:
                await self._fail(work, DIGITALOCEAN_UNAVAILABLE, exc.message)
            return
        work.unavailable = 0
        work.attempts += 1
        if droplet is None:
            await self._not_found(work)
            return
        was_missing = work.not_found > 0
        work.not_found = 0
        work.first_not_found_at = None
        values = droplet_values(droplet)
        if droplet.status == "active":
            await self._succeed(work, values)
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
            with contextlib.suppress(DigitalOceanError):
                if await self._client.get_action_status(work.create_action_id) == "errored":
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
        raise _Finished

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
        raise _Finished

    def _observe_duration(self, work: Work, outcome: str) -> None:
        if work.requested_at is not None:
            elapsed = (utcnow() - work.requested_at).total_seconds()
            metrics.PROVISIONING_DURATION.labels(outcome).observe(max(elapsed, 0.0))

    def _backoff(self, failures: int) -> float:
        ceiling = min(
            self._config.create_retry_max_s,
            self._config.create_retry_initial_s * 2 ** (failures - 1),
        )
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    @staticmethod
    def _log(work: Work, message: str, *args: Any) -> None:
        logger.info(
            message,
            *args,
            extra={"order_id": str(work.order_id), "droplet_id": work.droplet_id},
        )
