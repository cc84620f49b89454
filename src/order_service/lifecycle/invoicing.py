"""Rule 6 of the lifecycle scan (SPEC section 9, v1.2): renewals that open themselves.

An ACTIVE order without cancelAtPeriodEnd whose expiresAt is within
RENEWAL_INVOICE_LEAD gets the next period's renewal - one period at the live
price, no coupon, actor `system` - through the renewal writer users and ops
use (`renewals.service.open_period_renewal`), event `renewal.created`. Once
per period: `renewal_due_at` (the expiresAt of the period still to invoice,
set with every expiresAt) becomes null when the renewal is opened, so a
renewal canceled afterwards is not opened again until a new period begins.

O(due) like the other rules: the query reads the index on (status,
renewal_due_at), which only the due orders' range falls in. Prices
come from catalog *before* any row is locked (a slow catalog never holds a
batch's locks); then the priced batch is claimed with FOR UPDATE SKIP LOCKED
and each order is checked again under its lock, so two processes scanning at
once open one renewal per order and period. Catalog down: the rule logs and
stops for this scan (the next scan tries again); the other rules ran already.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import RowMapping, Select, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_service.catalog.client import CatalogClient
from order_service.db import plan_with_values, skip_locked
from order_service.errors import AppError, CatalogUnavailable
from order_service.orders.pricing import Quote
from order_service.orders.repository import orders_t
from order_service.orders.states import OrderStatus
from order_service.orders.transitions import SYSTEM
from order_service.renewals.service import open_period_renewal, price_renewal

logger = logging.getLogger("order_service.lifecycle")
o = orders_t.c


@dataclass
class Invoiced:
    opened: int = 0
    failed: int = 0


class RenewalInvoicer:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        catalog: CatalogClient,
        lead: timedelta,
        batch: int,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._catalog = catalog
        self._lead = lead
        self._batch = batch

    def due(self, now: datetime) -> Select[Any]:
        return (
            select(o.id, o.user_id, o.plan_id, o.duration, o.expires_at)
            .where(
                o.status == OrderStatus.ACTIVE.value,
                o.renewal_due_at <= now + self._lead,
                o.cancel_at_period_end.is_(False),
            )
            .order_by(o.renewal_due_at)
        )

    async def run(self, now: datetime) -> Invoiced:
        result = Invoiced()
        skipped: set[uuid.UUID] = set()
        while True:
            async with self._sessionmaker() as session, session.begin():
                await plan_with_values(session)
                statement = self.due(now)
                if skipped:
                    statement = statement.where(o.id.not_in(skipped))
                rows = list((await session.execute(statement.limit(self._batch))).mappings())
            quotes = await self._price(rows, skipped, result)
            if quotes is None:
                return result
            await self._open(quotes, skipped, result, now)
            if len(rows) < self._batch:
                return result

    async def _price(
        self, rows: list[RowMapping], skipped: set[uuid.UUID], result: Invoiced
    ) -> dict[uuid.UUID, tuple[RowMapping, Quote]] | None:
        """Each due order's price now (no lock held); None: catalog is down."""
        quotes = {}
        for row in rows:
            try:
                quotes[row["id"]] = (row, await price_renewal(self._catalog, row, 1, None))
            except CatalogUnavailable as exc:
                logger.warning("lifecycle: catalog unavailable, renewals wait: %s", exc.message)
                return None
            except AppError as exc:  # the plan or its price is gone: ops must look
                logger.warning("lifecycle: order %s cannot be priced: %s", row["id"], exc.message)
                skipped.add(row["id"])
                result.failed += 1
        return quotes

    async def _open(
        self,
        quotes: dict[uuid.UUID, tuple[RowMapping, Quote]],
        skipped: set[uuid.UUID],
        result: Invoiced,
        now: datetime,
    ) -> None:
        if not quotes:
            return
        async with self._sessionmaker() as session, session.begin():
            await plan_with_values(session)
            claim = self.due(now).where(o.id.in_(list(quotes)))
            claimed = {row["id"] for row in (await session.execute(skip_locked(claim))).mappings()}
            # Another process holds the rest (or they were invoiced meanwhile).
            skipped.update(set(quotes) - claimed)
            for order_id in claimed:
                due, quote = quotes[order_id]
                try:
                    async with session.begin_nested():
                        opened = await open_period_renewal(session, due, quote, actor=SYSTEM)
                except Exception:
                    # This order alone is rolled back; the rest of the batch commits.
                    logger.exception("lifecycle: renewal of order %s failed", order_id)
                    result.failed += 1
                    opened = False
                if opened:
                    result.opened += 1
                else:
                    skipped.add(order_id)
