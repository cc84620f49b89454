"""reads_first.ReadsFirst: a write waits for the reads in flight when it asks, and no longer."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from order_service import reads_first
from order_service.db import create_engine, create_sessionmaker
from order_service.reads_first import ReadsFirst, YieldingSession


@pytest.fixture(autouse=True)
def _no_cap_unless_tested(monkeypatch: pytest.MonkeyPatch) -> None:
    # The cap (25 ms) would end the waits these tests look at; its own test sets it.
    monkeypatch.setattr(reads_first, "MAX_WAIT_S", 10.0)


async def test_no_read_in_flight_no_wait() -> None:
    gate = ReadsFirst()
    await asyncio.wait_for(gate.turn(), 0.1)


async def test_a_write_waits_for_the_reads_in_flight() -> None:
    gate = ReadsFirst()
    order: list[str] = []
    with gate.reading():
        write = asyncio.create_task(gate.turn())
        await asyncio.sleep(0.01)
        assert not write.done()
        order.append("read ended")
    await write
    order.append("write ran")
    assert order == ["read ended", "write ran"]


async def test_a_write_does_not_wait_for_reads_that_came_after_it() -> None:
    """No starvation: a steady stream of reads cannot hold a write back for ever."""
    gate = ReadsFirst()
    first = gate.reading()
    first.__enter__()
    write = asyncio.create_task(gate.turn())
    await asyncio.sleep(0)
    later = gate.reading()
    later.__enter__()  # arrives while the write waits
    first.__exit__(None, None, None)
    await asyncio.wait_for(write, 0.1)  # the later read is still in flight
    assert gate.reads_in_flight == 1
    later.__exit__(None, None, None)


async def test_a_write_waits_for_every_read_it_saw_whatever_order_they_end() -> None:
    gate = ReadsFirst()
    reads = [gate.reading() for _ in range(3)]
    for read in reads:
        read.__enter__()
    write = asyncio.create_task(gate.turn())
    await asyncio.sleep(0)
    for read in (reads[2], reads[0]):
        read.__exit__(None, None, None)
        await asyncio.sleep(0)
        assert not write.done()
    reads[1].__exit__(None, None, None)
    await asyncio.wait_for(write, 0.1)


async def test_a_cancelled_write_leaves_the_others_working() -> None:
    gate = ReadsFirst()
    with gate.reading():
        cancelled = asyncio.create_task(gate.turn())
        waiting = asyncio.create_task(gate.turn())
        await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.sleep(0)
    await asyncio.wait_for(waiting, 0.1)
    assert cancelled.cancelled()


async def test_a_stalled_read_holds_a_write_back_at_most_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reads_first, "MAX_WAIT_S", 0.05)
    gate = ReadsFirst()
    with gate.reading():  # never ends while the write waits
        started = time.monotonic()
        await asyncio.wait_for(gate.turn(), 1)
        assert 0.04 <= time.monotonic() - started < 0.5


def test_a_write_on_another_loop_is_woken_when_the_reads_end() -> None:
    """The duties ask from their own loop in another thread."""
    gate = ReadsFirst()
    read = gate.reading()
    read.__enter__()
    waiting, woken = threading.Event(), threading.Event()

    async def duty() -> None:
        turn = asyncio.ensure_future(gate.turn())
        await asyncio.sleep(0.01)
        assert not turn.done()
        waiting.set()
        await turn
        woken.set()

    thread = threading.Thread(target=asyncio.run, args=(duty(),))
    thread.start()
    assert waiting.wait(5)
    assert not woken.is_set()
    read.__exit__(None, None, None)  # on this thread, as the request loop would
    assert woken.wait(5)
    thread.join(5)


@pytest.mark.parametrize("how", ["duty", "payment", "neither"])
async def test_a_yielding_session_waits_before_each_statement(tmp_path: Path, how: str) -> None:
    """A duty's sessions yield through their sessionmaker's info, a payment's through
    the door's context variable; any other request's session does not wait."""
    gate = ReadsFirst()
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    info = {reads_first.INFO_KEY: gate} if how == "duty" else None
    sessionmaker = create_sessionmaker(engine, session_class=YieldingSession, info=info)
    token = reads_first.yielding_to.set(gate if how == "payment" else None)
    try:
        async with sessionmaker() as session:
            # Connected first (no read in flight: no wait), so what follows times the
            # statement, not the opening of the database on a busy machine.
            assert (await session.execute(text("SELECT 1"))).scalar() == 1
            with gate.reading():
                statement = asyncio.ensure_future(session.execute(text("SELECT 1")))
                if how == "neither":
                    # Answered while the read is still in flight; a yielding statement
                    # would wait for it up to the cap (10 s here).
                    done, _ = await asyncio.wait({statement}, timeout=5)
                    assert done
                else:
                    done, _ = await asyncio.wait({statement}, timeout=0.2)
                    assert not done
            assert (await statement).scalar() == 1
    finally:
        reads_first.yielding_to.reset(token)
        await engine.dispose()


def test_a_waiter_whose_loop_closed_never_fails_a_read() -> None:
    """Duties stopping (their loop cancelled and closed) while they wait for a read."""
    gate = ReadsFirst()
    read = gate.reading()
    read.__enter__()

    async def duty_stopping() -> None:
        waiting = asyncio.ensure_future(gate.turn())
        await asyncio.sleep(0.01)  # then asyncio.run cancels it and closes the loop
        assert not waiting.done()

    thread = threading.Thread(target=asyncio.run, args=(duty_stopping(),))
    thread.start()
    thread.join(5)
    read.__exit__(None, None, None)  # must not raise
    assert gate.reads_in_flight == 0


async def test_a_write_that_timed_out_leaves_no_waiter_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reads_first, "MAX_WAIT_S", 0.01)
    gate = ReadsFirst()
    with gate.reading():
        await gate.turn()  # times out
        assert gate._waiting == []
