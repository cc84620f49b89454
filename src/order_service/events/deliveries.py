"""Webhook deliveries: durable rows sent by the one engine (leases, WorkRunner).

A delivery is one event to one endpoint. The dispatcher of each process
claims due PENDING deliveries with a lease (so exactly one process sends an
attempt), POSTs the signed event and records the outcome (SPEC section 11):
2xx ends it DELIVERED; anything else is tried again after the next wait of
WEBHOOK_RETRY_SCHEDULE (jittered by up to 20%), and FAILED after the last;
410 disables the endpoint and fails its pending deliveries.

A dead endpoint cannot take the dispatcher over: at most PER_ENDPOINT_CAP
deliveries per endpoint are in flight (claims skip endpoints at their cap),
every attempt ends at WEBHOOK_TIMEOUT, and no database connection is held
while waiting for an answer.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import RowMapping, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_service import metrics
from order_service.db import utcnow
from order_service.engine import LeaseStore, WorkRunner, process_identity, wakeup
from order_service.events.feed import event_json
from order_service.events.models import Event, WebhookDelivery, WebhookEndpoint
from order_service.events.signing import signed_headers

logger = logging.getLogger("order_service.webhooks")

deliveries_t = WebhookDelivery.__table__
endpoints_t = WebhookEndpoint.__table__
events_t = Event.__table__

PENDING, DELIVERED, FAILED = "PENDING", "DELIVERED", "FAILED"
PER_ENDPOINT_CAP = 10
MAX_IN_FLIGHT = 100
SCAN_INTERVAL_S = 1.0
JITTER = 0.2
ERROR_MAX_CHARS = 500


def retry_wait(schedule: tuple[timedelta, ...], attempts: int) -> timedelta | None:
    """The wait before the next attempt after `attempts` failed ones; None: no more."""
    if attempts > len(schedule):
        return None
    base = schedule[attempts - 1]
    return base * random.uniform(1 - JITTER, 1 + JITTER)


class DeliveryStore(LeaseStore):
    """Leases on webhook deliveries, with a cap of in-flight deliveries per endpoint."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        owner: str,
        *,
        per_endpoint_cap: int = PER_ENDPOINT_CAP,
    ) -> None:
        t = deliveries_t
        super().__init__(
            sessionmaker,
            t,
            owner,
            unfinished=lambda: t.c.status == PENDING,
            due=lambda now: t.c.next_attempt_at <= now,
            order_by=(t.c.next_attempt_at,),
        )
        self.per_endpoint_cap = per_endpoint_cap

    async def claim_due(self, lease: timedelta, limit: int) -> list[RowMapping]:
        """Claim due deliveries of active endpoints, at most the cap per endpoint in flight.

        Endpoints already at their cap are left out of the candidates, so a
        backlog for a dead endpoint never hides other endpoints' work.
        """
        t = deliveries_t
        now = utcnow()
        free = or_(t.c.lease_owner.is_(None), t.c.lease_expires_at < now)
        leased = (t.c.status == PENDING, t.c.lease_owner.is_not(None), t.c.lease_expires_at >= now)
        at_cap = (
            select(t.c.endpoint_id)
            .where(*leased)
            .group_by(t.c.endpoint_id)
            .having(func.count() >= self.per_endpoint_cap)
        )
        active = select(endpoints_t.c.id).where(endpoints_t.c.is_active)
        candidates = (
            select(t.c.id, t.c.endpoint_id)
            .where(
                t.c.status == PENDING,
                t.c.next_attempt_at <= now,
                free,
                t.c.endpoint_id.in_(active),
                t.c.endpoint_id.not_in(at_cap),
            )
            .order_by(t.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self._sessionmaker() as session, session.begin():
            rows = (await session.execute(candidates)).all()
            if not rows:
                return []
            endpoint_ids = {row.endpoint_id for row in rows}
            in_flight = Counter(
                dict(
                    (
                        await session.execute(
                            select(t.c.endpoint_id, func.count())
                            .where(*leased, t.c.endpoint_id.in_(endpoint_ids))
                            .group_by(t.c.endpoint_id)
                        )
                    ).all()
                )
            )
            chosen = []
            for row in rows:
                if in_flight[row.endpoint_id] < self.per_endpoint_cap:
                    in_flight[row.endpoint_id] += 1
                    chosen.append(row.id)
            claim = (
                update(t)
                .where(t.c.id.in_(chosen), free, t.c.status == PENDING)
                .values(lease_owner=self.owner, lease_expires_at=now + lease, updated_at=now)
                .returning(*t.c)
            )
            return list((await session.execute(claim)).mappings())

    async def load_target(self, row: RowMapping) -> tuple[dict[str, Any] | None, Any]:
        """The endpoint (url, secret, active) and the body to send (None: the event is gone)."""
        async with self._sessionmaker() as session:
            endpoint = (
                await session.execute(
                    select(endpoints_t.c.url, endpoints_t.c.secret, endpoints_t.c.is_active).where(
                        endpoints_t.c.id == row["endpoint_id"]
                    )
                )
            ).first()
            if row["payload"] is not None:
                return row["payload"], endpoint
            event = (
                (await session.execute(select(events_t).where(events_t.c.id == row["event_id"])))
                .mappings()
                .first()
            )
        return (event_json(event) if event is not None else None), endpoint

    async def release(self, delivery_id: uuid.UUID) -> None:
        """Give a claimed delivery back without an attempt (its endpoint went inactive)."""
        await self.save(delivery_id, lease_owner=None, lease_expires_at=None)

    async def disable_endpoint(
        self, delivery_id: uuid.UUID, endpoint_id: uuid.UUID, values: dict[str, Any]
    ) -> int:
        """410 Gone: this delivery and every pending one of the endpoint FAILED, endpoint off.

        Other processes' leases on those deliveries are cleared too, so their
        workers' next write finds the lease lost and changes nothing.
        """
        now = utcnow()
        async with self._sessionmaker() as session, session.begin():
            await self.update_held(session, delivery_id, values)
            await session.execute(
                update(endpoints_t)
                .where(endpoints_t.c.id == endpoint_id)
                .values(is_active=False, updated_at=now)
            )
            result = await session.execute(
                update(deliveries_t)
                .where(deliveries_t.c.endpoint_id == endpoint_id, deliveries_t.c.status == PENDING)
                .values(
                    status=FAILED,
                    last_error="endpoint disabled: it answered 410 Gone",
                    next_attempt_at=None,
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=now,
                )
            )
            return result.rowcount or 0  # type: ignore[attr-defined]


class Dispatcher:
    """Sends webhook deliveries: the WorkRunner of this kind plus one shared HTTP client."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        retry_schedule: tuple[timedelta, ...],
        timeout: timedelta,
        transport: httpx.AsyncBaseTransport | None = None,
        per_endpoint_cap: int = PER_ENDPOINT_CAP,
        max_in_flight: int = MAX_IN_FLIGHT,
        scan_interval_s: float = SCAN_INTERVAL_S,
    ) -> None:
        self.store = DeliveryStore(
            sessionmaker, process_identity(), per_endpoint_cap=per_endpoint_cap
        )
        self._schedule = retry_schedule
        timeout_s = timeout.total_seconds()
        # One client for every endpoint: pooled connections, bounded in number.
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=20),
            follow_redirects=False,  # a 3xx is an answer that did not land (SPEC)
        )
        self._runner = WorkRunner(
            "webhooks",
            self.store,
            self._deliver,
            interval_s=scan_interval_s,
            # Longer than one attempt (and renewed while it runs): after a crash,
            # another process resends the attempts in flight this much later.
            lease_s=3 * timeout_s + 5,
            batch=max_in_flight,
            max_in_flight=max_in_flight,
            on_count=metrics.WEBHOOK_IN_FLIGHT.set,
        )

    def start(self) -> None:
        wakeup.register(wakeup.DELIVERIES, self.wake)
        self._runner.start()

    def wake(self) -> None:
        self._runner.wake()

    async def scan(self) -> int:
        return await self._runner.scan()

    async def stop(self) -> None:
        wakeup.unregister(wakeup.DELIVERIES, self.wake)
        await self._runner.stop()
        await self._client.aclose()

    async def _deliver(self, row: RowMapping) -> None:
        body, endpoint = await self.store.load_target(row)
        if endpoint is None:
            return  # the endpoint was deleted; its deliveries went with it
        if not endpoint.is_active:
            await self.store.release(row["id"])
            return
        if body is None:
            await self._finish(row, {"status": FAILED, "last_error": "the event was purged"})
            return
        text = orjson.dumps(body).decode()
        headers = signed_headers(endpoint.secret.get_secret_value(), str(row["event_id"]), text)
        started = time.monotonic()
        status_code: int | None = None
        error: str | None = None
        try:
            response = await self._client.post(endpoint.url, content=text, headers=headers)
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
            result = f"{status_code // 100}xx"
        except httpx.TimeoutException:
            error, result = "timed out", "timeout"
        except httpx.HTTPError as exc:
            error, result = f"{type(exc).__name__}: {exc}".rstrip(": "), "error"
        duration_ms = round((time.monotonic() - started) * 1000)
        metrics.WEBHOOK_ATTEMPTS.labels(result).inc()
        values: dict[str, Any] = {
            "attempts": row["attempts"] + 1,
            "last_status_code": status_code,
            "last_error": error[:ERROR_MAX_CHARS] if error else None,
            "last_duration_ms": duration_ms,
        }
        if error is None:
            now = utcnow()
            values.update(status=DELIVERED, delivered_at=now, next_attempt_at=None)
            created = body.get("createdAt")
            if created and body.get("sequence") is not None:
                latency = (now - datetime.fromisoformat(created)).total_seconds()
                metrics.WEBHOOK_LATENCY.observe(max(latency, 0.0))
            await self._finish(row, values)
        elif status_code == 410:
            values.update(
                status=FAILED, next_attempt_at=None, lease_owner=None, lease_expires_at=None
            )
            failed = await self.store.disable_endpoint(row["id"], row["endpoint_id"], values)
            metrics.WEBHOOK_DELIVERIES.labels(FAILED.lower()).inc(1 + failed)
            logger.warning(
                "webhook endpoint %s answered 410: disabled, %d pending deliveries failed",
                row["endpoint_id"],
                failed,
            )
        else:
            wait = retry_wait(self._schedule, values["attempts"])
            if wait is None:
                values.update(status=FAILED, next_attempt_at=None)
            else:
                values["next_attempt_at"] = utcnow() + wait
                # Come back for it then, rather than at the next scan.
                asyncio.get_running_loop().call_later(wait.total_seconds(), self.wake)
            await self._finish(row, values)

    async def _finish(self, row: RowMapping, values: dict[str, Any]) -> None:
        await self.store.save(row["id"], **values, lease_owner=None, lease_expires_at=None)
        # A slot of this endpoint (and of the process) is free again: claim the
        # next due delivery now, not at the next scan. Wakes coalesce, so a
        # burst of finished deliveries costs one claim.
        self.wake()
        status = values.get("status")
        if status in (DELIVERED, FAILED):
            metrics.WEBHOOK_DELIVERIES.labels(status.lower()).inc()
