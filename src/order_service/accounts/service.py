"""Ops' DO accounts (SPEC section 13): add, list, change, remove, check now.

A token is checked with `GET /v2/account` before anything is stored (DO
refusing it is `400 INVALID_DO_TOKEN`), stored encrypted (secret_box.py), and
never shown again: the JSON carries its last 4 characters. Services flush,
the request's session commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy.exc
from sqlalchemy import RowMapping, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from order_service.accounts.health import record_check
from order_service.accounts.models import DEFAULT_ACCOUNT_ID, DEFAULT_ACCOUNT_NAME, DoAccount
from order_service.accounts.placement import Usage, usage_of, wake_waiting_tasks
from order_service.accounts.schemas import CreateDoAccountRequest, UpdateDoAccountRequest
from order_service.accounts.views import account_json
from order_service.db import utcnow
from order_service.errors import (
    DigitalOceanUnavailable,
    DoAccountExists,
    DoAccountInUse,
    DoAccountNotFound,
    InvalidDoToken,
    ValidationFailed,
)
from order_service.orders.states import AccountHealth
from order_service.orders.views import page_meta
from order_service.provisioning.digitalocean import (
    Account,
    DigitalOceanAuthError,
    DigitalOceanClient,
    DigitalOceanError,
)
from order_service.provisioning.models import DoBudget, DoBudgetGrant
from order_service.provisioning.rate_budget import RateBudget
from order_service.secret_box import SecretBox, require

accounts_t = DoAccount.__table__

#: Checks a token with DO; the account it names, or INVALID_DO_TOKEN / DIGITALOCEAN_UNAVAILABLE.
TokenCheck = Callable[[str], Awaitable[Account]]


def token_checker(base_url: str, transport: Any = None) -> TokenCheck:
    """One `GET /v2/account` with a token that is not stored yet (so it has no budget
    row of its own yet: a single request, outside the shared budgets)."""

    async def check(token: str) -> Account:
        client = DigitalOceanClient(
            base_url, token, budget=RateBudget(), transport=transport, retry_attempts=2
        )
        try:
            return await client.get_account()
        except DigitalOceanAuthError:
            raise InvalidDoToken() from None
        except DigitalOceanError as exc:
            raise DigitalOceanUnavailable(
                f"DigitalOcean could not check the token now: {exc.message}"
            ) from None
        finally:
            await client.aclose()

    return check


def parse_account_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise DoAccountNotFound() from None


async def list_accounts(session: AsyncSession, *, page: int, limit: int) -> dict[str, Any]:
    total = (await session.execute(select(func.count()).select_from(accounts_t))).scalar_one()
    rows = list(
        (
            await session.execute(
                select(accounts_t)
                .order_by(accounts_t.c.name)
                .limit(limit)
                .offset((page - 1) * limit)
            )
        ).mappings()
    )
    usage = await usage_of(session, [row["id"] for row in rows])
    data = [account_json(row, usage.get(row["id"], Usage())) for row in rows]
    return {"data": data, "meta": page_meta(page, limit, total)}


async def get_account(session: AsyncSession, account_id: uuid.UUID) -> dict[str, Any]:
    row = await _read(session, account_id, lock=False)
    return {"data": await _json(session, row)}


async def create_account(
    session: AsyncSession,
    box: SecretBox | None,
    check_token: TokenCheck,
    body: CreateDoAccountRequest,
) -> dict[str, Any]:
    box = require(box)
    if body.name == DEFAULT_ACCOUNT_NAME:
        raise DoAccountExists("`default` is the account of DIGITALOCEAN_API_TOKEN")
    # DO first: no row is written (and no connection held) before the token is good.
    answer = await check_token(body.token)
    now = utcnow()
    account_id = uuid.uuid4()
    taken = select(accounts_t.c.id).where(accounts_t.c.name == body.name)
    if (await session.execute(taken)).first() is not None:
        raise DoAccountExists(details={"name": body.name})
    try:
        await session.execute(
            insert(accounts_t).values(
                id=account_id,
                name=body.name,
                token_encrypted=box.encrypt(body.token),
                token_hint=body.token[-4:],
                is_active=body.is_active,
                reserve=body.reserve,
                droplet_limit=answer.droplet_limit,
                health=AccountHealth.HEALTHY.value,
                last_checked_at=now,
                created_at=now,
                updated_at=now,
            )
        )
    except sqlalchemy.exc.IntegrityError:  # the same name, added at the same moment
        raise DoAccountExists(details={"name": body.name}) from None
    if body.is_active:
        await wake_waiting_tasks(session)
    return await get_account(session, account_id)


async def update_account(
    session: AsyncSession,
    box: SecretBox | None,
    check_token: TokenCheck,
    account_id: uuid.UUID,
    body: UpdateDoAccountRequest,
) -> dict[str, Any]:
    answer: Account | None = None
    values: dict[str, Any] = {}
    if body.token is not None:
        if account_id == DEFAULT_ACCOUNT_ID:
            raise ValidationFailed(
                "The default account's token lives in DIGITALOCEAN_API_TOKEN",
                details={"fields": [{"field": "token", "in": "body", "message": "not allowed"}]},
            )
        box = require(box)
        # DO before the database: no lock (on SQLite, no write lock) held meanwhile.
        answer = await check_token(body.token)
        values.update(token_encrypted=box.encrypt(body.token), token_hint=body.token[-4:])
    row = await _read(session, account_id, lock=True)
    if body.is_active is not None:
        values["is_active"] = body.is_active
    if body.reserve is not None:
        values["reserve"] = body.reserve
    if values:
        await session.execute(
            update(accounts_t)
            .where(accounts_t.c.id == account_id)
            .values(**values, updated_at=utcnow())
        )
    if answer is not None:
        # The new token works: the account is what DO just said (HEALTHY again, its
        # event, its waiting work resumed) in this same transaction.
        await record_check(session, account_id, answer)
    more_room = (body.is_active and not row["is_active"]) or (
        body.reserve is not None and body.reserve < row["reserve"]
    )
    if more_room:
        await wake_waiting_tasks(session)
    return await get_account(session, account_id)


async def delete_account(session: AsyncSession, account_id: uuid.UUID) -> None:
    if account_id == DEFAULT_ACCOUNT_ID:
        raise ValidationFailed(
            "The default account is DIGITALOCEAN_API_TOKEN's: unset the variable instead",
            details={"fields": [{"field": "id", "in": "path", "message": "not allowed"}]},
        )
    await _read(session, account_id, lock=True)
    usage = (await usage_of(session, [account_id])).get(account_id, Usage())
    if usage.used:
        raise DoAccountInUse(
            f"The account still holds {usage.droplets} droplet(s) and {usage.creating} "
            "create(s) of our orders: terminate them first",
            details={"droplets": usage.droplets, "creating": usage.creating},
        )
    for table in (DoBudgetGrant.__table__, DoBudget.__table__):
        await session.execute(delete(table).where(table.c.account_id == account_id))
    await session.execute(delete(accounts_t).where(accounts_t.c.id == account_id))


async def _read(session: AsyncSession, account_id: uuid.UUID, *, lock: bool) -> RowMapping:
    statement = select(accounts_t).where(accounts_t.c.id == account_id)
    if lock:
        statement = statement.with_for_update()
    row = (await session.execute(statement)).mappings().first()
    if row is None:
        raise DoAccountNotFound()
    return row


async def _json(session: AsyncSession, row: RowMapping) -> dict[str, Any]:
    usage = (await usage_of(session, [row["id"]])).get(row["id"], Usage())
    return account_json(row, usage)
