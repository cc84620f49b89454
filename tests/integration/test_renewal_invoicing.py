"""Renewals that open themselves (SPEC section 9, rule 6): RENEWAL_INVOICE_LEAD before
expiresAt the scan opens the next period's renewal, once per period."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mocks.catalog_service.data import PLAN_STANDARD_ID
from order_service import clock
from order_service.catalog.client import CatalogClient
from order_service.db import create_engine, create_sessionmaker
from order_service.lifecycle.scanner import LifecycleScanner
from order_service.renewals.models import Renewal
from tests.conftest import auth, make_settings
from tests.lifecycle_helpers import (
    active_order,
    detail,
    event_types,
    events_of,
    new_renewal,
    ops,
    parse,
    pay_renewal,
    scan,
)

renewals_t = Renewal.__table__
DAY = timedelta(days=1)


def move_to(moment: datetime) -> None:
    clock.advance(moment - clock.now())


async def renewals_of(app: Any, order_id: str) -> list[dict[str, Any]]:
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            select(renewals_t)
            .where(renewals_t.c.order_id == uuid.UUID(order_id))
            .order_by(renewals_t.c.created_at)
        )
        return [dict(row) for row in rows.mappings()]


async def cancel_renewal(client: httpx.AsyncClient, order_id: str, renewal_id: str) -> None:
    response = await client.post(
        f"/api/v1/orders/{order_id}/renewals/{renewal_id}/cancel", headers=auth("life-user")
    )
    assert response.status_code == 200, response.text


async def test_opens_one_renewal_per_period_and_not_again_after_a_cancel(
    client: httpx.AsyncClient, app: Any
) -> None:
    order = await active_order(client, app)
    expires = parse(order["expiresAt"])
    move_to(expires - 8 * DAY)
    assert (await scan(app)).invoiced == 0  # not within P7D yet
    move_to(expires - 7 * DAY + timedelta(minutes=1))
    assert (await scan(app)).invoiced == 1
    assert (await scan(app)).invoiced == 0
    [renewal] = await renewals_of(app, order["id"])
    assert (renewal["status"], renewal["periods"], renewal["requested_by"]) == (
        "PENDING_PAYMENT",
        1,
        "system",
    )
    # The live price, no coupon: Basic 100,000 - 10 % promo.
    assert (renewal["base_price"], renewal["coupon_code"], renewal["final_price"]) == (
        100000,
        None,
        90000,
    )
    [event] = await events_of(app, order["id"], "renewal.created")
    assert event["renewal"]["id"] == str(renewal["id"])

    # The customer cancels it: not opened again in this period.
    await cancel_renewal(client, order["id"], str(renewal["id"]))
    move_to(expires - DAY)
    assert (await scan(app)).invoiced == 0
    # They renew themselves instead; the next period gets its own in time.
    own = (await new_renewal(client, order["id"])).json()["data"]
    paid = (await pay_renewal(client, own["id"])).json()["data"]
    move_to(parse(paid["newExpiresAt"]) - 3 * DAY)
    assert (await scan(app)).invoiced == 1
    assert [r["requested_by"] for r in await renewals_of(app, order["id"])] == [
        "system",
        "user:life-user",
        "system",
    ]


async def test_not_for_a_cancel_at_period_end_an_open_renewal_or_a_plan_change(
    client: httpx.AsyncClient, app: Any
) -> None:
    ending = await active_order(client, app)
    assert (
        await client.post(f"/api/v1/orders/{ending['id']}/cancel", headers=auth("life-user"))
    ).status_code == 200
    with_own = await active_order(client, app)
    own = (await new_renewal(client, with_own["id"])).json()["data"]
    changing = await active_order(client, app)
    await ops(client, changing["id"], "expiry", expiresAt=changing["expiresAt"])
    async with app.state.sessionmaker() as session, session.begin():
        # A plan change in the way (its API needs DO's lists; the row is enough here).
        from order_service.plan_changes.models import PlanChange

        await session.execute(
            PlanChange.__table__.insert().values(
                id=uuid.uuid4(),
                order_id=uuid.UUID(changing["id"]),
                from_plan_id=changing["planId"],
                to_plan_id=PLAN_STANDARD_ID,
                to_plan_name="Standard 2GB",
                to_size_slug="s-1vcpu-2gb",
                duration="MONTHLY",
                old_price=90000,
                new_price=185000,
                amount_due=1000,
                currency="IDR",
                resize_disk=True,
                status="PENDING_PAYMENT",
                requested_by="user:life-user",
                created_at=clock.now(),
                updated_at=clock.now(),
            )
        )
    move_to(parse(ending["expiresAt"]) - 2 * DAY)
    assert (await scan(app)).invoiced == 0
    assert await renewals_of(app, ending["id"]) == []
    assert [r["id"] for r in await renewals_of(app, with_own["id"])] == [uuid.UUID(own["id"])]
    assert await renewals_of(app, changing["id"]) == []
    # The customer's own renewal counted as this period's: canceling it reopens nothing.
    await cancel_renewal(client, with_own["id"], own["id"])
    assert (await scan(app)).invoiced == 0
    # The plan change ended: the next scan opens that order's renewal.
    async with app.state.sessionmaker() as session, session.begin():
        from order_service.plan_changes.models import PlanChange

        await session.execute(PlanChange.__table__.update().values(status="CANCELED"))
    assert (await scan(app)).invoiced == 1
    assert len(await renewals_of(app, changing["id"])) == 1


async def test_lead_zero_never_opens(client: httpx.AsyncClient, app: Any, database: Any) -> None:
    order = await active_order(client, app)
    move_to(parse(order["expiresAt"]) - DAY)
    settings = make_settings(database.url, renewal_invoice_lead="0")
    assert (await scan(app, settings)).invoiced == 0
    assert await renewals_of(app, order["id"]) == []


async def test_catalog_down_stalls_no_other_rule_and_the_next_scan_opens_it(
    client: httpx.AsyncClient, app: Any, catalog_app: Any
) -> None:
    due = await active_order(client, app)
    late = await active_order(client, app)
    # `late` expired 2 days ago (past SUSPEND_GRACE): rule 4 suspends it.
    await ops(client, late["id"], "expiry", expiresAt=(clock.now() - 2 * DAY).isoformat())
    move_to(parse(due["expiresAt"]) - DAY)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=catalog_app), base_url="http://catalog"
    ) as mock:
        await mock.post("/_mock/faults", json={"status": 503})
        result = await scan(app)
        assert (result.invoiced, result.suspended) == (0, 1)
        await mock.delete("/_mock/faults")
    assert (await scan(app)).invoiced == 1
    assert "renewal.created" in await event_types(app, due["id"])
    assert (await detail(client, late["id"]))["status"] == "SUSPENDED"


async def test_the_renewal_prices_the_plan_the_order_has_now(
    client: httpx.AsyncClient, app: Any
) -> None:
    order = await active_order(client, app, planId=PLAN_STANDARD_ID)
    move_to(parse(order["expiresAt"]) - DAY)
    assert (await scan(app)).invoiced == 1
    [renewal] = await renewals_of(app, order["id"])
    assert renewal["base_price"] == 200000  # Standard's monthly price, not Basic's


@pytest.mark.postgres_only
async def test_two_processes_scanning_open_one_renewal_per_order_and_period(
    client: httpx.AsyncClient, app: Any, database: Any, catalog_app: Any
) -> None:
    orders = await asyncio.gather(*(active_order(client, app, f"user-{i}") for i in range(40)))
    move_to(parse(orders[0]["expiresAt"]) - DAY)
    engines = [create_engine(database.url, pool_size=5) for _ in range(2)]
    catalogs = [
        CatalogClient("http://catalog", transport=httpx.ASGITransport(app=catalog_app))
        for _ in range(2)
    ]
    try:
        scanners = [
            LifecycleScanner(
                create_sessionmaker(engine), app.state.settings, batch=7, catalog=catalog
            )
            for engine, catalog in zip(engines, catalogs, strict=True)
        ]
        results = await asyncio.gather(*(s.scan() for s in scanners), *(s.scan() for s in scanners))
    finally:
        for engine in engines:
            await engine.dispose()
        for catalog in catalogs:
            await catalog.aclose()
    assert sum(result.invoiced for result in results) == 40
    assert all(result.failed == 0 for result in results)
    ids = [uuid.UUID(order["id"]) for order in orders]
    async with app.state.sessionmaker() as session:
        counts = Counter(
            (
                await session.execute(
                    select(renewals_t.c.order_id).where(renewals_t.c.order_id.in_(ids))
                )
            ).scalars()
        )
    assert counts == dict.fromkeys(ids, 1)
    for order_id in ids:
        assert (await event_types(app, str(order_id))).count("renewal.created") == 1
