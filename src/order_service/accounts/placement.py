"""Where a new droplet goes: a slot in the DO account with the most room (SPEC section 13).

A slot is not a row of its own: a task holds one in its account while it is
unfinished or its droplet lives (`SLOT_HELD_SQL`), so the count can never
drift from what the tasks say. Two processes never fill an account's last
slot twice because the slot is taken under a lock on the candidate accounts'
rows (`FOR UPDATE`, in name order so lockers never deadlock; on SQLite every
write transaction already holds the database's write lock), and the count and
the task's new account commit in that same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import RowMapping, and_, func, not_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from order_service.accounts.models import DoAccount
from order_service.db import utcnow
from order_service.engine import wakeup
from order_service.orders.states import AccountHealth, TaskStatus
from order_service.provisioning.models import SLOT_HELD_SQL, ProvisioningTask

accounts_t = DoAccount.__table__
tasks_t = ProvisioningTask.__table__

WAITING_FOR_CAPACITY = "WAITING_FOR_CAPACITY"

_HOLDS_SLOT = text(SLOT_HELD_SQL)
_LIVE_DROPLET = and_(
    tasks_t.c.droplet_id.is_not(None),
    func.coalesce(tasks_t.c.droplet_status, "new").not_in(("destroyed", "gone")),
)
_USAGE = (
    select(
        tasks_t.c.do_account_id,
        func.count().filter(_LIVE_DROPLET).label("droplets"),
        func.count().filter(not_(_LIVE_DROPLET)).label("creating"),
    )
    .where(_HOLDS_SLOT)
    .group_by(tasks_t.c.do_account_id)
)
_CANDIDATES = (
    select(accounts_t)
    .where(
        accounts_t.c.is_active.is_(True),
        accounts_t.c.health != AccountHealth.UNHEALTHY.value,
        accounts_t.c.droplet_limit.is_not(None),
    )
    .order_by(accounts_t.c.name)
)


@dataclass(frozen=True, slots=True)
class Usage:
    """What an account holds of ours: live droplets and creates in flight."""

    droplets: int = 0
    creating: int = 0

    @property
    def used(self) -> int:
        return self.droplets + self.creating


def free_slots(account: RowMapping | dict[str, Any], usage: Usage) -> int:
    """`dropletLimit - reserve - droplets - creating`, never below 0 (0 while unknown)."""
    limit = account["droplet_limit"]
    if limit is None:
        return 0
    return max(0, limit - (account["reserve"] or 0) - usage.used)


def share_used(account: RowMapping | dict[str, Any], usage: Usage) -> float:
    room = (account["droplet_limit"] or 0) - (account["reserve"] or 0)
    return usage.used / room if room > 0 else float("inf")


async def usage_of(
    session: AsyncSession, account_ids: Iterable[uuid.UUID] | None = None
) -> dict[uuid.UUID, Usage]:
    """Each account's usage (the partial index holds only live rows: cost ~ what they hold)."""
    statement = _USAGE
    if account_ids is not None:
        ids = list(account_ids)
        if not ids:
            return {}
        statement = statement.where(tasks_t.c.do_account_id.in_(ids))
    rows = (await session.execute(statement)).all()
    return {row.do_account_id: Usage(row.droplets, row.creating) for row in rows}


async def choose_account(
    session: AsyncSession, budget_left: Callable[[uuid.UUID], float]
) -> RowMapping | None:
    """Lock the placeable accounts and return the one a new droplet goes to, or None.

    Among the active, not UNHEALTHY accounts with a known limit and a free slot:
    the lowest share used, then the most DO budget left this minute, then the name.
    The locks are held until the caller's transaction ends, so its write of the
    task's account is what the next placement (in any process) counts.
    """
    candidates = list((await session.execute(_CANDIDATES.with_for_update())).mappings())
    usage = await usage_of(session, [account["id"] for account in candidates])
    room = [a for a in candidates if free_slots(a, usage.get(a["id"], Usage())) > 0]
    if not room:
        return None
    return min(
        room,
        key=lambda a: (
            share_used(a, usage.get(a["id"], Usage())),
            -budget_left(a["id"]),
            a["name"],
        ),
    )


async def wake_waiting_tasks(session: AsyncSession) -> None:
    """A slot may have freed (a droplet destroyed, an account added, enabled, healthy
    again or given a larger limit): the tasks waiting for capacity try again now,
    in this process at once and in the others at their next scan."""
    await session.execute(
        update(tasks_t)
        .where(
            tasks_t.c.error_code == WAITING_FOR_CAPACITY,
            tasks_t.c.status == TaskStatus.PENDING.value,
        )
        .values(next_check_at=utcnow())
    )
    wakeup.wake_after_commit(session, wakeup.PROVISIONING)
