"""Runs one kind of durable work: scan, claim, work, renew, release.

The database is the source of truth. Each scan (every interval, or at once
after `wake()` when this process committed new work) claims due rows with a
lease and starts one worker coroutine per row. Leases of live workers are
renewed every third of the lease; a worker whose lease was lost is
cancelled. On stop, workers are cancelled and every lease is given back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import RowMapping

from order_service.engine import wakeup
from order_service.engine.leases import LeaseLost, LeaseStore

logger = logging.getLogger("order_service.engine")

Worker = Callable[[RowMapping], Awaitable[None]]


def process_identity() -> str:
    """Who holds a lease: host, pid and a random part (a restarted pid is someone new)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class WorkRunner:
    def __init__(
        self,
        name: str,
        store: LeaseStore,
        worker: Worker,
        *,
        interval_s: float,
        lease_s: float,
        batch: int = 500,
        max_in_flight: int | None = None,
        on_count: Callable[[int], None] | None = None,
    ) -> None:
        self.name = name
        self.store = store
        self._worker = worker
        self._interval_s = interval_s
        self._lease = timedelta(seconds=lease_s)
        self._batch = batch
        self._max_in_flight = max_in_flight
        self._on_count = on_count
        self._wake = asyncio.Event()
        self.workers: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._background: list[asyncio.Task[None]] = []
        self._stopping = False

    def start(self) -> None:
        self._background = [
            asyncio.create_task(self._scan_loop(), name=f"{self.name}-scan"),
            asyncio.create_task(self._renew_loop(), name=f"{self.name}-renew"),
        ]

    def wake(self) -> None:
        """Look for new work now (called after this process committed some)."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop taking work, stop the workers, give the leases back."""
        self._stopping = True
        tasks = [*self._background, *self.workers.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            released = await self.store.release_all()
        except Exception:
            # Giving the leases back only lets another process start sooner;
            # if the database refuses now (SQLite still locked by a write that
            # a cancelled worker left behind), they expire after the lease time.
            logger.warning("%s stopped; its leases will expire instead", self.name, exc_info=True)
            return
        logger.info("%s stopped; released %d lease(s)", self.name, released)

    async def _scan_loop(self) -> None:
        while not self._stopping:
            try:
                await self.scan()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s scan failed; trying again next interval", self.name)
            await wakeup.sleep_until_woken(self._wake, self._interval_s)
            self._wake.clear()

    async def scan(self) -> int:
        """Claim due rows and start a worker for each; returns how many started."""
        limit = self._batch
        if self._max_in_flight is not None:
            limit = min(limit, self._max_in_flight - len(self.workers))
            if limit <= 0:
                return 0
        rows = await self.store.claim_due(self._lease, limit)
        started = 0
        for row in rows:
            if row["id"] in self.workers:
                continue
            self.workers[row["id"]] = asyncio.create_task(
                self._run(row), name=f"{self.name}-{row['id']}"
            )
            started += 1
        self._count()
        return started

    async def _run(self, row: RowMapping) -> None:
        try:
            await self._worker(row)
        except LeaseLost:
            logger.warning("%s %s taken over by another process", self.name, row["id"])
        except asyncio.CancelledError:
            raise
        except Exception:
            # An unexpected fault (e.g. the database went away): the lease
            # expires and the row is picked up again; nothing is half-written
            # because every write is its own transaction.
            logger.exception("%s worker crashed; %s will be retried", self.name, row["id"])
        finally:
            self.workers.pop(row["id"], None)
            self._count()

    async def _renew_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self._lease.total_seconds() / 3)
            if not self.workers:
                continue
            asked = list(self.workers)
            try:
                held = await self.store.renew(self._lease, asked)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s lease renewal failed", self.name)
                continue
            # Only the rows this renewal asked about: a worker a scan started
            # while it ran was not in the question, and its fresh lease is held.
            for row_id in asked:
                task = self.workers.get(row_id)
                if task is not None and row_id not in held and not task.done():
                    logger.warning("%s lease lost for %s; stopping its worker", self.name, row_id)
                    task.cancel()

    def _count(self) -> None:
        if self._on_count is not None:
            self._on_count(len(self.workers))
