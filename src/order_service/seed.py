"""`order-service seed`: sample orders in every state, for demos and local runs.

Orders are written through the same transition function as the API (and the
lifecycle's own changes: suspension, termination, renewal payment), so their
history, events and server actions are what the service itself would have
recorded. The prices and names are a snapshot like the mock catalog's; no
catalog is called.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, update

from order_service.db import create_engine, create_sessionmaker, utcnow
from order_service.events.outbox import write_event
from order_service.lifecycle import changes
from order_service.lifecycle.period import first_period
from order_service.orders import repository as repo
from order_service.orders.service import item_row
from order_service.orders.states import (
    OrderEvent,
    OrderStatus,
    RenewalStatus,
    SuspensionReason,
    TaskStatus,
    TerminationReason,
)
from order_service.orders.transitions import (
    ADMIN,
    SYSTEM,
    record_event,
    record_history,
    transition,
)
from order_service.provisioning.models import ProvisioningTask
from order_service.renewals.models import Renewal
from order_service.renewals.payment import pay_locked
from order_service.renewals.views import renewal_json

tasks_t = ProvisioningTask.__table__
renewals_t = Renewal.__table__
REMINDERS = (timedelta(days=7), timedelta(days=3), timedelta(days=1))

PLAN = {"id": "a1000000-0000-4000-8000-000000000001", "name": "Basic 1GB", "size": "s-1vcpu-1gb"}
IMAGE = {
    "id": "b2000000-0000-4000-8000-000000000001",
    "name": "Ubuntu 22.04 LTS",
    "slug": "ubuntu-22-04-x64",
}

# The end state of each sample order, in the order they are created. PAID is
# not here: PAID -> PROVISIONING commits in the payment's own transaction, so
# an order is never seen resting in PAID.
# After ACTIVE (v1.1): a scheduled cancellation, a paid renewal plus an open
# one, a suspension for non-payment, and an ops termination.
LIFECYCLE = ("CANCEL_SCHEDULED", "RENEWED", "SUSPENDED", "TERMINATED")
SCENARIOS = (
    "PENDING_PAYMENT",
    "PAYMENT_FAILED",
    "CANCELED",
    "PROVISIONING",
    "ACTIVE",
    "FAILED",
    *LIFECYCLE,
)


async def seed(database_url: str, users: list[str]) -> list[str]:
    """Create one order per scenario for each user; returns a line per order."""
    engine = create_engine(database_url)
    sessionmaker = create_sessionmaker(engine)
    lines = []
    try:
        for user in users:
            for scenario in SCENARIOS:
                async with sessionmaker() as session, session.begin():
                    order_id = await _seed_order(session, user, scenario)
                lines.append(f"{order_id}  {user:<14} {scenario}")
    finally:
        await engine.dispose()
    return lines


async def _seed_order(session: Any, user: str, scenario: str) -> uuid.UUID:
    order_id = uuid.uuid4()
    now = utcnow()
    base, promo = 100_000, 10_000
    await session.execute(
        insert(repo.orders_t).values(
            id=order_id,
            user_id=user,
            plan_id=PLAN["id"],
            plan_name=PLAN["name"],
            image_id=IMAGE["id"],
            image_name=IMAGE["name"],
            duration="MONTHLY",
            base_price=base,
            promo_discount=promo,
            coupon_code=None,
            coupon_discount=0,
            final_price=base - promo,
            currency="IDR",
            status=OrderStatus.PENDING_PAYMENT.value,
            do_size_slug=PLAN["size"],
            do_image_slug=IMAGE["slug"],
            # The region its task names; access stays null (no first-access password
            # is made for sample data).
            region="sgp1",
            created_at=now,
            updated_at=now,
        )
    )
    await session.execute(
        insert(repo.items_t),
        [
            item_row(order_id, "PLAN", PLAN["id"], f"{PLAN['name']} (MONTHLY)", base, now),
            item_row(order_id, "IMAGE", IMAGE["id"], IMAGE["name"], 0, now),
        ],
    )
    await record_history(
        session, order_id, None, "PENDING_PAYMENT", actor=f"user:{user}", reason="Seeded order"
    )
    if scenario == "PENDING_PAYMENT":
        return order_id
    if scenario == "PAYMENT_FAILED":
        await record_event(
            session,
            order_id,
            OrderEvent.PAYMENT_FAILED,
            expected=OrderStatus.PENDING_PAYMENT,
            actor=ADMIN,
            reason="Card declined (seed)",
        )
        return order_id
    if scenario == "CANCELED":
        await transition(
            session, order_id, OrderStatus.CANCELED, actor=f"user:{user}", reason="Changed my mind"
        )
        return order_id
    await transition(
        session,
        order_id,
        OrderStatus.PAID,
        actor=ADMIN,
        reason="Seed payment",
        values={"paid_at": now},
    )
    await transition(
        session, order_id, OrderStatus.PROVISIONING, actor=SYSTEM, reason="Provisioning queued"
    )
    task_id = uuid.uuid4()
    await session.execute(
        insert(tasks_t).values(
            id=task_id,
            order_id=order_id,
            status=TaskStatus.PENDING.value,
            do_region="sgp1",
            do_size=PLAN["size"],
            do_image=IMAGE["slug"],
            attempts=0,
            not_found_count=0,
            created_at=now,
            updated_at=now,
            next_check_at=now,
        )
    )
    if scenario == "PROVISIONING":
        # Left PENDING: a running provisioner picks it up like a fresh payment.
        return order_id
    succeeded = scenario == "ACTIVE" or scenario in LIFECYCLE
    await session.execute(
        update(tasks_t)
        .where(tasks_t.c.id == task_id)
        .values(
            status=(TaskStatus.SUCCESS if succeeded else TaskStatus.FAILED).value,
            droplet_id=abs(hash(order_id)) % 10**9,
            droplet_name=f"vps-{str(order_id)[:8]}",
            droplet_status="active" if succeeded else "new",
            ipv4_public="203.0.113.10" if succeeded else None,
            ipv4_private="10.130.0.10" if succeeded else None,
            droplet_tags=["order-service", f"order-{order_id}"],
            droplet_created_at=now,
            error_code=None if succeeded else "PROVISIONING_TIMEOUT",
            error_message=None if succeeded else "Droplet was not active within 300s (seed)",
            attempts=3 if succeeded else 60,
            started_at=now,
            requested_at=now,
            completed_at=now + timedelta(seconds=40),
        )
    )
    # The suspended sample's period ended a few days ago.
    started = now - timedelta(days=33) if scenario == "SUSPENDED" else now
    await transition(
        session,
        order_id,
        OrderStatus.ACTIVE if succeeded else OrderStatus.FAILED,
        actor=SYSTEM,
        reason="Seeded droplet",
        values=(lambda order: first_period(order, started, REMINDERS)) if succeeded else None,
    )
    if scenario in LIFECYCLE:
        await _after_active(session, order_id, user, scenario)
    return order_id


async def _after_active(session: Any, order_id: uuid.UUID, user: str, scenario: str) -> None:
    if scenario == "CANCEL_SCHEDULED":
        await record_event(
            session,
            order_id,
            OrderEvent.CANCEL_SCHEDULED,
            expected=OrderStatus.ACTIVE,
            actor=f"user:{user}",
            reason="Moving to another provider (seed)",
            values={"cancel_at_period_end": True},
        )
    elif scenario == "RENEWED":
        paid = await _renewal(session, order_id, user, periods=3)
        order = await repo.lock_order(session, order_id)
        await pay_locked(session, order, paid, "Seed renewal payment", actor=ADMIN, reminders=())
        await _renewal(session, order_id, user, periods=1)  # and one still open
    elif scenario == "SUSPENDED":
        await changes.suspend(
            session,
            order_id,
            SuspensionReason.EXPIRED,
            actor=SYSTEM,
            reason="Not renewed (seed)",
            shutdown_grace=timedelta(minutes=2),
        )
    else:
        await changes.terminate(
            session, order_id, TerminationReason.ADMIN, actor=ADMIN, reason="Abuse report (seed)"
        )


async def _renewal(session: Any, order_id: uuid.UUID, user: str, *, periods: int) -> Any:
    now = utcnow()
    base, promo = 100_000 * periods, 10_000 * periods
    row = (
        (
            await session.execute(
                insert(renewals_t)
                .values(
                    id=uuid.uuid4(),
                    order_id=order_id,
                    periods=periods,
                    duration="MONTHLY",
                    base_price=base,
                    promo_discount=promo,
                    coupon_code=None,
                    coupon_discount=0,
                    final_price=base - promo,
                    currency="IDR",
                    status=RenewalStatus.PENDING_PAYMENT.value,
                    requested_by=f"user:{user}",
                    created_at=now,
                    updated_at=now,
                )
                .returning(*renewals_t.c)
            )
        )
        .mappings()
        .one()
    )
    await write_event(session, "renewal.created", order_id, renewal=renewal_json(row))
    return row
