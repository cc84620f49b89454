"""An account's health and droplet limit: what DO said, written with its event.

Every write here is one short transaction. A 401/403 on any call makes the
account UNHEALTHY (event `do_account.unhealthy`, once); a check that passes
makes it HEALTHY again (`do_account.healthy`), refreshes `dropletLimit`, and -
when that may have made room - wakes the tasks waiting for capacity.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import RowMapping, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from order_service.accounts.models import DoAccount
from order_service.accounts.placement import Usage, usage_of, wake_waiting_tasks
from order_service.accounts.views import account_json
from order_service.actions.models import ServerAction
from order_service.db import utcnow
from order_service.engine import wakeup
from order_service.events.outbox import write_account_event
from order_service.orders.states import AccountHealth, ActionStatus, TaskStatus
from order_service.provisioning.digitalocean import Account
from order_service.provisioning.models import ProvisioningTask

logger = logging.getLogger("order_service.accounts")

accounts_t = DoAccount.__table__
tasks_t = ProvisioningTask.__table__
actions_t = ServerAction.__table__
UNFINISHED_TASKS = (TaskStatus.PENDING.value, TaskStatus.IN_PROGRESS.value)
#: `refused(token_key=ANY_TOKEN)`: whatever token the account has now was refused.
ANY_TOKEN = object()


class AccountStates:
    """The writes of what DO said about an account."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        retry_unknown: timedelta = timedelta(seconds=30),
    ) -> None:
        self._sessionmaker = sessionmaker
        self.sessionmaker = sessionmaker
        # A failed check of an account whose limit is still unknown is tried again this
        # soon, not a whole check interval later: its paid orders wait for it.
        self._retry_unknown = retry_unknown

    def session(self) -> AsyncSession:
        return self._sessionmaker()

    async def refused(
        self, account_id: uuid.UUID, message: str, *, token_key: object = ANY_TOKEN
    ) -> bool:
        """DO refused the token (401) or a request (403): UNHEALTHY, its event once.

        `token_key` is the encrypted token the refused request was sent with: when
        the account has another token by now (a PATCH in some process), the refusal
        is stale and nothing is written (False: try again with the new token)."""
        async with self._sessionmaker() as session, session.begin():
            return await record_refusal(session, account_id, message, token_key=token_key)

    async def checked(self, account_id: uuid.UUID, answer: Account) -> None:
        """`GET /v2/account` answered: the live limit, HEALTHY (its event when it was not)."""
        async with self._sessionmaker() as session, session.begin():
            await record_check(session, account_id, answer)

    async def check_failed(self, account_id: uuid.UUID, message: str) -> None:
        """DO could not be asked (down, 5xx): noted, the health stays what it was."""
        now = utcnow()
        async with self._sessionmaker() as session, session.begin():
            row = await _lock(session, account_id)
            if row is None:
                return
            values: dict[str, Any] = {"last_error": message, "last_checked_at": now}
            if row["droplet_limit"] is None:
                values["next_check_at"] = now + self._retry_unknown
            await _set(session, account_id, **values)

    async def not_configured(self, account_id: uuid.UUID, message: str) -> None:
        """An account without a token (`default` with DIGITALOCEAN_API_TOKEN unset)."""
        await self._update(account_id, last_error=message)

    async def full(self, account_id: uuid.UUID, message: str) -> None:
        """DO's droplet-limit 422: the limit becomes what the account holds (its reserve
        plus our live droplets), so no new droplet is placed there until a check (or
        ops) says there is room again."""
        async with self._sessionmaker() as session, session.begin():
            row = await _lock(session, account_id)
            if row is None:
                return
            usage = (await usage_of(session, [account_id])).get(account_id)
            holds = (row["reserve"] or 0) + (usage.droplets if usage else 0)
            if row["droplet_limit"] is None or holds < row["droplet_limit"]:
                logger.warning(
                    "DO account %s is full at %d droplets: %s", row["name"], holds, message
                )
                await _set(session, account_id, droplet_limit=holds, last_error=message)

    async def claim_due_checks(self, interval: timedelta) -> list[uuid.UUID]:
        """The accounts due for a check, claimed: across processes, one check each per
        interval (the UPDATE's WHERE is re-read after a concurrent claim commits)."""
        now = utcnow()
        statement = (
            update(accounts_t)
            .where(or_(accounts_t.c.next_check_at.is_(None), accounts_t.c.next_check_at <= now))
            .values(next_check_at=now + interval)
            .returning(accounts_t.c.id)
        )
        async with self._sessionmaker() as session, session.begin():
            return list((await session.execute(statement)).scalars())

    async def _update(self, account_id: uuid.UUID, **values: Any) -> None:
        async with self._sessionmaker() as session, session.begin():
            await session.execute(
                update(accounts_t)
                .where(accounts_t.c.id == account_id)
                .values(**values, updated_at=utcnow())
            )


async def record_refusal(
    session: AsyncSession, account_id: uuid.UUID, message: str, *, token_key: object = ANY_TOKEN
) -> bool:
    row = await _lock(session, account_id)
    if row is None:
        return False
    if token_key is not ANY_TOKEN and row["token_encrypted"] != token_key:
        return False  # sent with a token the account no longer has
    after = await _set(
        session, account_id, health=AccountHealth.UNHEALTHY.value, last_error=message
    )
    if row["health"] != AccountHealth.UNHEALTHY.value:
        logger.warning("DO account %s is UNHEALTHY: %s", row["name"], message)
        await _event(session, "do_account.unhealthy", after)
    return True


async def record_check(session: AsyncSession, account_id: uuid.UUID, answer: Account) -> None:
    """In the caller's transaction: the account as DO just described it."""
    row = await _lock(session, account_id)
    if row is None:
        return
    after = await _set(
        session,
        account_id,
        health=AccountHealth.HEALTHY.value,
        droplet_limit=answer.droplet_limit,
        last_error=None,
        last_checked_at=utcnow(),
    )
    if row["health"] == AccountHealth.UNHEALTHY.value:
        logger.info("DO account %s is HEALTHY again", row["name"])
        await _event(session, "do_account.healthy", after)
        await resume_account_work(session, account_id)
    if (
        row["health"] != AccountHealth.HEALTHY.value
        or row["droplet_limit"] is None
        or answer.droplet_limit > row["droplet_limit"]
    ):
        await wake_waiting_tasks(session)


async def resume_account_work(session: AsyncSession, account_id: uuid.UUID) -> None:
    """The account can be asked again: the work on its droplets that waited for it
    (provisioning tasks, server actions under way) resumes now, not at its retry."""
    now = utcnow()
    await session.execute(
        update(tasks_t)
        .where(
            tasks_t.c.do_account_id == account_id,
            tasks_t.c.status.in_(UNFINISHED_TASKS),
            tasks_t.c.next_check_at > now,
        )
        .values(next_check_at=now)
    )
    # Only actions under way: a PENDING one may be held back on purpose (the
    # suspension's POWER_OFF after SHUTDOWN_GRACE).
    await session.execute(
        update(actions_t)
        .where(
            actions_t.c.order_id.in_(
                select(tasks_t.c.order_id).where(tasks_t.c.do_account_id == account_id)
            ),
            actions_t.c.status == ActionStatus.IN_PROGRESS.value,
            actions_t.c.next_attempt_at > now,
        )
        .values(next_attempt_at=now)
    )
    wakeup.wake_after_commit(session, wakeup.PROVISIONING)
    wakeup.wake_after_commit(session, wakeup.ACTIONS)


async def _lock(session: AsyncSession, account_id: uuid.UUID) -> RowMapping | None:
    statement = select(accounts_t).where(accounts_t.c.id == account_id).with_for_update()
    return (await session.execute(statement)).mappings().first()


async def _set(session: AsyncSession, account_id: uuid.UUID, **values: Any) -> RowMapping:
    statement = (
        update(accounts_t)
        .where(accounts_t.c.id == account_id)
        .values(**values, updated_at=utcnow())
        .returning(*accounts_t.c)
    )
    return (await session.execute(statement)).mappings().one()


async def _event(session: AsyncSession, event_type: str, account: RowMapping) -> None:
    usage = (await usage_of(session, [account["id"]])).get(account["id"], Usage())
    await write_account_event(session, event_type, account_json(account, usage))
