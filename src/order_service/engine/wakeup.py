"""In-process wake-ups after commit: new work is looked at now, not next tick.

A runner registers a callback for its kind of work; code that commits new
work calls `wake_after_commit(session, kind)`. The database stays the
source of truth: a wake-up only shortens the wait of this process's own
runner (other processes find the work on their next scan), and a wake-up
that finds nothing costs one cheap scan.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from order_service.db import on_commit

ACTIONS = "actions"
EVENTS = "events"
DELIVERIES = "deliveries"

_wakers: dict[str, list[Callable[[], None]]] = defaultdict(list)


def register(kind: str, callback: Callable[[], None]) -> None:
    _wakers[kind].append(callback)


def unregister(kind: str, callback: Callable[[], None]) -> None:
    if callback in _wakers[kind]:
        _wakers[kind].remove(callback)


def wake(kind: str) -> None:
    for callback in list(_wakers[kind]):
        callback()


def wake_after_commit(session: AsyncSession, kind: str) -> None:
    """Wake the runners of `kind` once the session's transaction commits (once per session)."""
    pending: set[str] = session.info.setdefault("wake_kinds", set())
    if kind in pending:
        return
    pending.add(kind)

    def after_commit() -> None:
        pending.discard(kind)
        wake(kind)

    on_commit(session, after_commit)
