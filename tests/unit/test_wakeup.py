"""engine/wakeup.py: a wake-up reaches a runner on another event loop, on that loop."""

from __future__ import annotations

import asyncio
import threading

from order_service.engine import wakeup


def test_a_runner_on_another_loop_is_woken_on_its_own_thread() -> None:
    woken_on: list[str] = []
    registered = threading.Event()
    done = threading.Event()
    stop: list[asyncio.Event] = []
    loops: list[asyncio.AbstractEventLoop] = []

    def callback() -> None:
        woken_on.append(threading.current_thread().name)
        done.set()

    async def runner_side() -> None:
        stop.append(asyncio.Event())
        loops.append(asyncio.get_running_loop())
        wakeup.register("test-kind", callback)
        registered.set()
        await stop[0].wait()
        wakeup.unregister("test-kind", callback)

    thread = threading.Thread(target=asyncio.run, args=(runner_side(),), name="runner-loop")
    thread.start()
    assert registered.wait(5)

    async def committer_side() -> None:
        wakeup.wake("test-kind")  # from this loop: handed over, not called here

    asyncio.run(committer_side())
    assert done.wait(5)
    assert woken_on == ["runner-loop"]
    wakeup.call_on(loops[0], stop[0].set)
    thread.join(5)
    assert not thread.is_alive()
    wakeup.wake("test-kind")  # unregistered: nothing is called
    assert woken_on == ["runner-loop"]


def test_a_runner_on_this_loop_is_called_at_once() -> None:
    calls: list[int] = []

    async def main() -> None:
        wakeup.register("test-same-loop", lambda: calls.append(1))
        wakeup.wake("test-same-loop")
        assert calls == [1]  # synchronously, like before loops were told apart
        wakeup._wakers.pop("test-same-loop")

    asyncio.run(main())


def test_a_wake_up_for_a_loop_that_ended_is_dropped() -> None:
    async def register_and_end() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    ended = asyncio.run(register_and_end())
    assert ended.is_closed()
    wakeup.call_on(ended, lambda: (_ for _ in ()).throw(AssertionError("called")))


async def _runner_loop(event: asyncio.Event, turns: list[int]) -> None:
    """A runner's idle loop: work, then sleep until woken (as runner.py, relay.py do)."""
    while True:
        turns.append(1)
        event.clear()
        await wakeup.sleep_until_woken(event, 60)


async def test_a_stop_in_the_same_turn_as_a_wake_up_still_stops_the_runner() -> None:
    # asyncio.wait_for on Python 3.11 returned the event's result here and lost
    # the cancellation: the loop went round again and stop() waited forever.
    event, turns = asyncio.Event(), []
    task = asyncio.create_task(_runner_loop(event, turns))
    await asyncio.sleep(0)  # the runner now sleeps
    event.set()
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=5)
    assert done == {task} and task.cancelled()
    assert turns == [1]


async def test_sleep_ends_at_the_wake_up_or_at_the_timeout() -> None:
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.call_later(0.01, event.set)
    started = loop.time()
    await wakeup.sleep_until_woken(event, 60)  # woken: does not wait the 60 s
    assert event.is_set() and loop.time() - started < 30

    event.clear()
    await wakeup.sleep_until_woken(event, 0.01)  # not woken: the timeout ends it quietly
    assert not event.is_set()
