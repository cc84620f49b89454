"""The lifecycle scan (SPEC section 9): what the service does by itself, in every process.

Every `LIFECYCLE_SCAN_INTERVAL` the six rules run in order (the sixth, renewals
that open themselves, in invoicing.py: it prices live, before locking). Each rule
claims its due orders in batches, `SELECT ... FOR UPDATE SKIP LOCKED LIMIT
n` on PostgreSQL (db.skip_locked), and changes the whole batch in one
transaction: a backlog of 10,000 is 100 transactions, not 10,000, and two
processes scanning at once take different rows. Each order still changes
through `transitions.transition` (or `record_event`), which re-checks its
status under the lock, and its droplet actions are written in the same
transaction, so a crash at any moment repeats nothing that committed and
loses nothing that did not. An order whose change fails is rolled back alone
(a savepoint) and left for the next scan.

The scan costs in proportion to the rows that are due: each rule reads one
index on (status, the time it waits on).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import RowMapping, Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_service import metrics
from order_service.catalog.client import CatalogClient
from order_service.config import Settings
from order_service.db import plan_with_values, skip_locked, utcnow
from order_service.engine import wakeup
from order_service.errors import AppError
from order_service.jsonresponse import iso
from order_service.lifecycle import changes
from order_service.lifecycle.invoicing import RenewalInvoicer
from order_service.lifecycle.period import iso_duration, next_reminder_at
from order_service.orders.repository import orders_t
from order_service.orders.states import (
    OrderEvent,
    OrderStatus,
    SuspensionReason,
    TerminationReason,
)
from order_service.orders.transitions import SYSTEM, OrderRow, record_event, transition

logger = logging.getLogger("order_service.lifecycle")

BATCH = 100
o = orders_t.c


class NotDue(AppError):
    """The order changed since it was selected: nothing to do for it now."""


@dataclass
class ScanResult:
    """How many orders each rule changed in one scan."""

    canceled: int = 0
    reminded: int = 0
    ended: int = 0  # terminated at the end of a period with cancelAtPeriodEnd
    suspended: int = 0
    terminated: int = 0
    invoiced: int = 0  # renewals opened by the service (rule 6)
    failed: int = 0

    def total(self) -> int:
        return (
            self.canceled
            + self.reminded
            + self.ended
            + self.suspended
            + self.terminated
            + self.invoiced
        )


Apply = Callable[[AsyncSession, RowMapping, datetime], Awaitable[None]]


class LifecycleScanner:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        batch: int = BATCH,
        catalog: CatalogClient | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._settings = settings
        self._batch = batch
        # Rule 6 prices renewals live; without a catalog client (or with
        # RENEWAL_INVOICE_LEAD 0) it does not run.
        lead = settings.renewal_invoice_lead
        self._invoicer = (
            RenewalInvoicer(sessionmaker, catalog, lead, batch)
            if catalog is not None and lead > timedelta(0)
            else None
        )
        self._interval_s = settings.lifecycle_scan_interval.total_seconds()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ running

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="lifecycle-scanner")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                started = time.monotonic()
                result = await self.scan()
                metrics.LIFECYCLE_SCAN_DURATION.observe(time.monotonic() - started)
                if result.total():
                    logger.info("lifecycle scan: %s", result)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The database is the source of truth: the next scan tries again.
                logger.exception("lifecycle scan failed")
            await wakeup.sleep_until_woken(self._wake, self._interval_s)
            self._wake.clear()

    # ------------------------------------------------------------ the rules

    async def scan(self) -> ScanResult:
        """Run the six rules of SPEC section 9 once, in order."""
        settings = self._settings
        result = ScanResult()
        now = utcnow()
        if settings.unpaid_order_ttl > timedelta(0):
            result.canceled = await self._rule(
                select(o.id)
                .where(
                    o.status == OrderStatus.PENDING_PAYMENT.value,
                    o.created_at <= now - settings.unpaid_order_ttl,
                )
                .order_by(o.created_at),
                self._cancel_unpaid,
                result,
            )
        result.reminded = await self._rule(
            select(o.id, o.expires_at, o.next_reminder_at)
            .where(o.status == OrderStatus.ACTIVE.value, o.next_reminder_at <= now)
            .order_by(o.next_reminder_at),
            self._remind,
            result,
        )
        result.ended = await self._rule(
            select(o.id)
            .where(
                o.status == OrderStatus.ACTIVE.value,
                o.expires_at <= now,
                o.cancel_at_period_end.is_(True),
            )
            .order_by(o.expires_at),
            self._end_period,
            result,
        )
        result.suspended = await self._rule(
            select(o.id)
            .where(
                o.status == OrderStatus.ACTIVE.value,
                o.expires_at <= now - settings.suspend_grace,
                o.cancel_at_period_end.is_(False),
            )
            .order_by(o.expires_at),
            self._suspend,
            result,
        )
        result.terminated = await self._rule(
            select(o.id)
            .where(
                o.status == OrderStatus.SUSPENDED.value,
                o.suspension_reason == SuspensionReason.EXPIRED.value,
                o.suspended_at <= now - settings.terminate_after,
            )
            .order_by(o.suspended_at),
            self._terminate,
            result,
        )
        if self._invoicer is not None:
            invoiced = await self._invoicer.run(now)
            result.invoiced, result.failed = invoiced.opened, result.failed + invoiced.failed
        for rule, count in (
            ("unpaid_canceled", result.canceled),
            ("reminded", result.reminded),
            ("period_ended", result.ended),
            ("suspended", result.suspended),
            ("terminated", result.terminated),
            ("renewal_opened", result.invoiced),
            ("failed", result.failed),
        ):
            if count:
                metrics.LIFECYCLE_CHANGES.labels(rule).inc(count)
        return result

    async def _rule(self, due: Select[Any], apply: Apply, result: ScanResult) -> int:
        """Claim and change due orders, one transaction per batch, until none is left."""
        changed = 0
        skipped: set[uuid.UUID] = set()
        while True:
            statement = due
            if skipped:
                statement = statement.where(o.id.not_in(skipped))
            async with self._sessionmaker() as session, session.begin():
                await plan_with_values(session)
                rows = (await session.execute(skip_locked(statement.limit(self._batch)))).mappings()
                batch = list(rows)
                now = utcnow()
                for row in batch:
                    try:
                        async with session.begin_nested():
                            await apply(session, row, now)
                        changed += 1
                    except NotDue:
                        skipped.add(row["id"])
                    except Exception:
                        # This order alone is rolled back; the rest of the batch commits.
                        logger.exception("lifecycle: order %s failed (%s)", row["id"], apply)
                        skipped.add(row["id"])
                        result.failed += 1
            if len(batch) < self._batch:
                return changed

    async def _cancel_unpaid(self, session: AsyncSession, row: RowMapping, now: datetime) -> None:
        ttl = iso_duration(self._settings.unpaid_order_ttl)
        await transition(
            session,
            row["id"],
            OrderStatus.CANCELED,
            actor=SYSTEM,
            reason=f"Unpaid for longer than UNPAID_ORDER_TTL ({ttl})",
            check=_still(OrderStatus.PENDING_PAYMENT, lambda _order: True),
        )

    async def _remind(self, session: AsyncSession, row: RowMapping, now: datetime) -> None:
        expires_at, due_at = row["expires_at"], row["next_reminder_at"]
        if expires_at is None or expires_at <= now:
            # The period ended before its reminder went out: none is due any more.
            await session.execute(
                update(orders_t).where(o.id == row["id"]).values(next_reminder_at=None)
            )
            return
        # The reminder due is the stored one (expires_at - next_reminder_at);
        # a scan that comes late (the service was down) sends the smallest
        # threshold already crossed instead, once, and skips the missed ones.
        crossed = [
            threshold
            for threshold in self._settings.expiry_reminders
            if threshold <= expires_at - due_at and expires_at - threshold <= now
        ]
        threshold = min([expires_at - due_at, *crossed])
        await record_event(
            session,
            row["id"],
            OrderEvent.EXPIRING,
            expected=OrderStatus.ACTIVE,
            actor=SYSTEM,
            reason=f"The service expires in less than {iso_duration(threshold)}",
            metadata={"threshold": iso_duration(threshold), "expiresAt": iso(expires_at)},
            # The next reminder moves in the same transaction as this one's
            # event: a restart never sends it twice.
            values={
                "next_reminder_at": next_reminder_at(
                    expires_at, now, self._settings.expiry_reminders, below=threshold
                )
            },
        )

    async def _end_period(self, session: AsyncSession, row: RowMapping, now: datetime) -> None:
        await changes.terminate(
            session,
            row["id"],
            TerminationReason.CANCELED_BY_USER,
            actor=SYSTEM,
            reason="The period ended and the user had canceled",
            check=_still(OrderStatus.ACTIVE, lambda order: order["cancel_at_period_end"]),
        )

    async def _suspend(self, session: AsyncSession, row: RowMapping, now: datetime) -> None:
        grace = self._settings.suspend_grace
        await changes.suspend(
            session,
            row["id"],
            SuspensionReason.EXPIRED,
            actor=SYSTEM,
            reason=f"Not renewed: expired more than SUSPEND_GRACE ({iso_duration(grace)}) ago",
            shutdown_grace=self._settings.shutdown_grace,
            check=_still(OrderStatus.ACTIVE, lambda order: order["expires_at"] <= now - grace),
        )

    async def _terminate(self, session: AsyncSession, row: RowMapping, now: datetime) -> None:
        after = self._settings.terminate_after
        await changes.terminate(
            session,
            row["id"],
            TerminationReason.EXPIRED,
            actor=SYSTEM,
            reason=f"Suspended for non-payment longer than TERMINATE_AFTER ({iso_duration(after)})",
            check=_still(
                OrderStatus.SUSPENDED,
                lambda order: (
                    order["suspension_reason"] == SuspensionReason.EXPIRED
                    and order["suspended_at"] <= now - after
                ),
            ),
        )


def _still(status: OrderStatus, due: Callable[[OrderRow], bool]) -> Callable[[OrderRow], None]:
    """A transition check: the locked row is still in `status` and still due."""

    def check(order: OrderRow) -> None:
        if order["status"] != status or not due(order):
            raise NotDue()

    return check
