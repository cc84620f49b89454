"""`order-service seed`: sample orders in every state, for demos and local runs.

Orders are written through the same transition function as the API, so
their history is what the service itself would have recorded. The prices
and names are a snapshot like the mock catalog's; no catalog is called.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, update

from order_service.db import create_engine, create_sessionmaker, utcnow
from order_service.orders import repository as repo
from order_service.orders.service import item_row
from order_service.orders.states import OrderEvent, OrderStatus, TaskStatus
from order_service.orders.transitions import (
    ADMIN,
    SYSTEM,
    record_event,
    record_history,
    transition,
)
from order_service.provisioning.models import ProvisioningTask

tasks_t = ProvisioningTask.__table__

PLAN = {"id": "a1000000-0000-4000-8000-000000000001", "name": "Basic 1GB", "size": "s-1vcpu-1gb"}
IMAGE = {
    "id": "b2000000-0000-4000-8000-000000000001",
    "name": "Ubuntu 22.04 LTS",
    "slug": "ubuntu-22-04-x64",
}

# The end state of each sample order, in the order they are created. PAID is
# not here: PAID -> PROVISIONING commits in the payment's own transaction, so
# an order is never seen resting in PAID.
SCENARIOS = ("PENDING_PAYMENT", "PAYMENT_FAILED", "CANCELED", "PROVISIONING", "ACTIVE", "FAILED")


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
    succeeded = scenario == "ACTIVE"
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
    await transition(
        session,
        order_id,
        OrderStatus.ACTIVE if succeeded else OrderStatus.FAILED,
        actor=SYSTEM,
        reason="Seeded droplet",
    )
    return order_id
