"""tests/watchdog.py: a hung test ends the run quickly, naming what every task waits for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

HUNG_TEST = """
import asyncio

async def test_waits_forever():
    never = asyncio.Event()
    await asyncio.create_task(never.wait(), name="the-stuck-one")
"""


def test_a_hung_async_test_ends_the_run_with_its_tasks_printed(tmp_path: Path) -> None:
    (tmp_path / "test_hung.py").write_text(HUNG_TEST)
    env = {**os.environ, "TEST_TIMEOUT_S": "2", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(  # noqa: S603 - fixed argv
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.watchdog",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=auto",
            "-o",
            "asyncio_default_fixture_loop_scope=session",
            "-o",
            "asyncio_default_test_loop_scope=session",
            "--rootdir",
            str(tmp_path),
            str(tmp_path / "test_hung.py"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 70, result.stdout + result.stderr
    assert "test_hung.py::test_waits_forever still running after 2 s" in result.stderr
    assert "the-stuck-one" in result.stderr  # the task, with where it waits
    assert "never.wait()" in result.stderr or "Event.wait" in result.stderr
