"""A hung test ends the run within minutes, with every stack printed.

CI gives the whole run 90 minutes; a test that never returns (a runner whose
stop waits forever) used to spend all of them and print nothing useful. When
one test (setup, call and teardown) passes TEST_TIMEOUT_S (default 600), this
prints the stack of every thread and of every asyncio task on every running
event loop (an idle loop shows only `select` in a thread dump: the tasks say
who waits for what), then exits the process with status 70.
"""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import io
import os
import sys
import threading
import time
from collections.abc import Iterator

import pytest

TIMEOUT_S = float(os.environ.get("TEST_TIMEOUT_S", "600"))
EXIT_STATUS = 70

_current: dict[str, object] = {}
_config: list[pytest.Config] = []


def _print_tasks(printed: threading.Event) -> None:
    out = io.StringIO()
    print(f"!!! asyncio tasks on loop {id(asyncio.get_running_loop()):#x}:", file=out)
    for task in asyncio.all_tasks():
        print(f"--- {task!r}", file=out)
        task.print_stack(limit=25, file=out)
    sys.stderr.write(out.getvalue())
    printed.set()


def _running_loops() -> list[asyncio.AbstractEventLoop]:
    """Every running loop: the tests' own and any a test or the app started in a thread."""
    return [
        o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop) and o.is_running()
    ]


def _expire(nodeid: str) -> None:
    # pytest holds fd 2 for the test's output: give the terminal back first.
    capture = _config[0].pluginmanager.getplugin("capturemanager") if _config else None
    if capture is not None:
        capture.suspend_global_capture(in_=False)
    sys.stderr = sys.__stderr__
    sys.stderr.write(f"\n!!! watchdog: {nodeid} still running after {TIMEOUT_S:.0f} s\n")
    sys.stderr.write("!!! threads:\n")
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    for loop in _running_loops():
        printed = threading.Event()
        loop.call_soon_threadsafe(_print_tasks, printed)
        if not printed.wait(10):
            sys.stderr.write(f"!!! loop {id(loop):#x} did not run for 10 s: blocked, not waiting\n")
    sys.stderr.flush()
    os._exit(EXIT_STATUS)


def _watch() -> None:
    while True:
        time.sleep(1)
        started, nodeid = _current.get("started"), _current.get("nodeid")
        if isinstance(started, float) and time.monotonic() - started > TIMEOUT_S:
            _expire(str(nodeid))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    _current.update(started=time.monotonic(), nodeid=item.nodeid)
    yield
    _current.pop("started", None)


def pytest_configure(config: pytest.Config) -> None:
    _config.append(config)
    threading.Thread(target=_watch, name="test-watchdog", daemon=True).start()
