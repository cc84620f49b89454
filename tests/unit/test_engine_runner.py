"""WorkRunner: claims, workers, lease renewal and stop, with a store in memory."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from order_service.engine import LeaseLost, WorkRunner


class MemoryStore:
    """Duck-typed LeaseStore: rows to hand out, leases it grants, renewals it answers."""

    def __init__(self) -> None:
        self.due: list[dict[str, Any]] = []
        self.lost: set[uuid.UUID] = set()
        self.renew_started = asyncio.Event()
        self.renew_may_answer = asyncio.Event()
        self.renew_may_answer.set()
        self.released = 0

    async def claim_due(self, lease: timedelta, limit: int) -> list[dict[str, Any]]:
        rows, self.due = self.due[:limit], self.due[limit:]
        return rows

    async def renew(self, lease: timedelta, ids: list[uuid.UUID]) -> set[uuid.UUID]:
        self.renew_started.set()
        await self.renew_may_answer.wait()
        return {row_id for row_id in ids if row_id not in self.lost}

    async def release_all(self) -> int:
        self.released += 1
        return 0


def row() -> dict[str, Any]:
    return {"id": uuid.uuid4()}


async def forever(_row: Any) -> None:
    await asyncio.Event().wait()


async def test_scan_starts_one_worker_per_claimed_row_and_skips_rows_in_work() -> None:
    store = MemoryStore()
    first = row()
    store.due = [first, row()]
    runner = WorkRunner("test", store, forever, interval_s=60, lease_s=30)  # type: ignore[arg-type]
    assert await runner.scan() == 2
    store.due = [first]  # claimed again (e.g. its lease was renewed late): not doubled
    assert await runner.scan() == 0
    assert len(runner.workers) == 2
    await runner.stop()
    assert store.released == 1


async def test_max_in_flight_limits_claims() -> None:
    store = MemoryStore()
    store.due = [row() for _ in range(5)]
    runner = WorkRunner(
        "test",
        store,
        forever,
        interval_s=60,
        lease_s=30,
        max_in_flight=3,  # type: ignore[arg-type]
    )
    assert await runner.scan() == 3
    assert await runner.scan() == 0
    await runner.stop()


async def test_a_worker_whose_lease_was_lost_is_cancelled() -> None:
    store = MemoryStore()
    lost = row()
    store.due = [lost, row()]
    store.lost = {lost["id"]}
    runner = WorkRunner("test", store, forever, interval_s=60, lease_s=0.06)  # type: ignore[arg-type]
    runner.start()
    await runner.scan()
    for _ in range(100):
        if lost["id"] not in runner.workers:
            break
        await asyncio.sleep(0.01)
    assert lost["id"] not in runner.workers
    assert len(runner.workers) == 1
    await runner.stop()


async def test_a_worker_started_while_a_renewal_ran_is_not_taken_for_lost() -> None:
    store = MemoryStore()
    store.due = [row()]
    runner = WorkRunner("test", store, forever, interval_s=60, lease_s=0.03)  # type: ignore[arg-type]
    await runner.scan()
    store.renew_may_answer.clear()
    runner.start()
    await store.renew_started.wait()
    late = row()
    store.due = [late]
    await runner.scan()  # claimed after the renewal asked about the others
    store.renew_may_answer.set()
    await asyncio.sleep(0.05)
    assert late["id"] in runner.workers
    assert not runner.workers[late["id"]].done()
    await runner.stop()


async def test_a_crashing_or_lease_lost_worker_leaves_the_runner_working() -> None:
    store = MemoryStore()
    outcomes = iter([RuntimeError("database went away"), LeaseLost("x")])

    async def failing(_row: Any) -> None:
        raise next(outcomes)

    store.due = [row(), row()]
    runner = WorkRunner("test", store, failing, interval_s=60, lease_s=30)  # type: ignore[arg-type]
    assert await runner.scan() == 2
    await asyncio.sleep(0.01)
    assert runner.workers == {}  # both ended; their rows wait for the lease to expire
    await runner.stop()


async def test_stop_survives_a_database_that_refuses_the_release(caplog: Any) -> None:
    class Refusing(MemoryStore):
        async def release_all(self) -> int:
            raise RuntimeError("database is locked")

    store = Refusing()
    store.due = [row()]
    runner = WorkRunner("test", store, forever, interval_s=60, lease_s=30)  # type: ignore[arg-type]
    assert await runner.scan() == 1
    await runner.stop()  # the leases expire instead; stopping the process goes on
    assert all(task.done() for task in runner.workers.values())
    assert "leases will expire instead" in caplog.text
