"""Processes, ports, CPU and memory accounting for the benchmarks.

Everything here is synchronous on purpose: the harness is an orchestrator that
starts servers and load generators as separate processes and reads /proc.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / "bench"
RESULTS_DIR = BENCH_DIR / "results"
LUA_DIR = BENCH_DIR / "lua"
VENV_BIN = Path(sys.executable).parent

PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BENCH_PG_PORT", "5432"))
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")
DB_NAME = os.environ.get("BENCH_DB", "order_service_bench")

JWT_SECRET = "bench-only-hs256-secret-not-for-production"
INTERNAL_API_KEY = "bench-internal-api-key"
DO_TOKEN = "fake-do-token"

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _service_vars() -> frozenset[str]:
    """Every variable the service reads (its Settings fields): none may leak in from
    the caller's shell, or a run would measure a setting nobody asked for."""
    from order_service.config import Settings

    return frozenset(name.upper() for name in Settings.model_fields)


_SERVICE_VARS = _service_vars()


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def db_url(driver: str = "postgresql+asyncpg", name: str = DB_NAME) -> str:
    return f"{driver}://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SERVICE_VARS}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


# ------------------------------------------------------------------ processes


@dataclass
class Proc:
    """A server started by the harness, with its log file; stopped by its own pid."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: object = field(repr=False, default=None)

    @property
    def pid(self) -> int:
        return self.process.pid

    def pids(self) -> list[int]:
        """This process and its descendants (uvicorn workers)."""
        return [self.pid, *descendants(self.pid)]

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""

    def stop(self, timeout: float = 15) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                for pid in reversed(self.pids()):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.process.wait(5)
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]


def start(
    name: str,
    argv: list[str],
    *,
    env: Mapping[str, str],
    port: int,
    ready_path: str,
    workdir: Path,
    within: float = 30,
) -> Proc:
    log_path = workdir / f"{name}.log"
    handle = log_path.open("ab")
    process = subprocess.Popen(
        argv, env=dict(env), stdout=handle, stderr=subprocess.STDOUT, cwd=workdir
    )
    proc = Proc(name, f"http://127.0.0.1:{port}", process, log_path, handle)
    wait_http(proc, ready_path, within)
    return proc


def wait_http(proc: Proc, path: str, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited early:\n{proc.tail()}")
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(proc.url + path, timeout=2) as answer,  # noqa: S310
        ):
            if answer.status == 200:
                return
        time.sleep(0.1)
    proc.stop()
    raise RuntimeError(f"{proc.name} not ready within {within}s:\n{proc.tail()}")


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


# ------------------------------------------------------------------ CPU and memory


def _ticks(pid: int) -> int | None:
    with contextlib.suppress(OSError, IndexError, ValueError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return int(fields[11]) + int(fields[12])
    return None


def cpu_seconds(pids: Iterable[int]) -> float:
    """utime + stime of the given processes (all their threads), in seconds."""
    return sum(t for t in map(_ticks, pids) if t is not None) / CLK_TCK


def postgres_pids() -> list[int]:
    """Every PostgreSQL server process on the machine (comm 'postgres')."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
    return pids


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


PidSource = Callable[[], Iterable[int]]


class CpuMeter:
    """CPU used by named groups of processes between start() and stop(), in % of one core.

    Each group is a function returning pids, asked at start(); a process that
    ends meanwhile is left out (its last ticks are gone with it), so short-lived
    PostgreSQL backends are undercounted: see `loadgen` for the generator,
    measured exactly from its rusage once it has been waited for.
    """

    def __init__(self, groups: Mapping[str, PidSource]) -> None:
        self._groups = dict(groups)
        self._before: dict[str, dict[int, int]] = {}
        self._started = 0.0
        self._children = 0.0

    def start(self) -> None:
        self._before = {}
        for name, source in self._groups.items():
            ticks = {pid: _ticks(pid) for pid in source()}
            self._before[name] = {pid: t for pid, t in ticks.items() if t is not None}
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        self._children = usage.ru_utime + usage.ru_stime
        self._started = time.monotonic()

    def stop(self, *, waited_child: bool = False) -> dict[str, float]:
        wall = time.monotonic() - self._started
        result: dict[str, float] = {}
        for name, before in self._before.items():
            used = 0
            for pid, ticks in before.items():
                now = _ticks(pid)
                if now is not None:
                    used += now - ticks
            result[name] = round(100 * used / CLK_TCK / wall, 1)
        if waited_child:
            usage = resource.getrusage(resource.RUSAGE_CHILDREN)
            used_s = usage.ru_utime + usage.ru_stime - self._children
            result["loadgen"] = round(100 * used_s / wall, 1)
        result["wall_s"] = round(wall, 2)
        return result


# ------------------------------------------------------------------ machine facts


def machine() -> dict[str, object]:
    commit = "unknown"
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    dirty = False
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no", "--", "src"],
                cwd=REPO,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
    cpu_model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    mem_gib = 0.0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    pg_version = "unknown"
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        pg_version = subprocess.run(
            [
                "psql",
                "-h",
                PG_HOST,
                "-p",
                str(PG_PORT),
                "-U",
                PG_USER,
                "-Atc",
                "show server_version",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    return {
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": mem_gib,
        "python": sys.version.split()[0],
        "postgresql": pg_version,
        "git_commit": commit,
        "src_modified": dirty,
        "kernel": os.uname().release,
    }


def workdir(prefix: str = "order-service-bench-") -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def have(tool: str) -> str | None:
    return shutil.which(tool)


@contextlib.contextmanager
def stopping(*procs: Proc | None) -> Iterator[None]:
    try:
        yield
    finally:
        for proc in procs:
            if proc is not None:
                with contextlib.suppress(Exception):
                    proc.stop()
