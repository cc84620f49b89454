"""The dev stack's processes: free ports, one child per service, their output."""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence

from mocks.dev_stack.config import REPO_ROOT

LOG_LINES_KEPT = 40
STOP_TIMEOUT_S = 15.0


# --------------------------------------------------------------------------- ports


def port_in_use(host: str, port: int) -> bool:
    """True when something listens on host:port (or the port cannot be bound)."""
    probe_host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    with socket.socket() as client:
        client.settimeout(0.5)
        if client.connect_ex((probe_host, port)) == 0:
            return True
    with socket.socket() as server:
        # uvicorn sets SO_REUSEADDR too, so a port in TIME_WAIT counts as free.
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            server.bind((host, port))
        except OSError:
            return True
    return False


# --------------------------------------------------------------------------- children


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Runs in the child before exec: get SIGTERM if the dev stack itself is killed."""
    parent = os.getppid()
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


class Child:
    """One subprocess: its own session and environment, its output prefixed and kept."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        ready_url: str,
        out: Output,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.ready_url = ready_url
        self.out = out
        self.lines: collections.deque[str] = collections.deque(maxlen=LOG_LINES_KEPT)
        self.proc: subprocess.Popen[bytes] | None = None
        self._pump: threading.Thread | None = None
        self.last_probe = "no answer yet"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        self.env["PYTHONUNBUFFERED"] = "1"
        preexec = _die_with_parent if sys.platform.startswith("linux") else None
        self.proc = subprocess.Popen(  # noqa: S603 - argv built by this module
            self.argv,
            cwd=REPO_ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we forward it once
            preexec_fn=preexec,
        )
        self._pump = threading.Thread(target=self._copy_output, daemon=True)
        self._pump.start()

    def _copy_output(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            self.out.child_line(self.name, line)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def probe(self) -> bool:
        try:
            with urllib.request.urlopen(self.ready_url, timeout=1) as answer:  # noqa: S310
                self.last_probe = f"HTTP {answer.status}"
                return answer.status == 200
        except urllib.error.HTTPError as exc:
            self.last_probe = f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            self.last_probe = f"{type(reason).__name__}: {reason}"
        return False

    def signal(self, signum: int) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signum)  # its session's group: uvicorn and anything it ran

    def wait(self, timeout: float) -> int | None:
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        if self._pump is not None:
            self._pump.join(timeout=2)
        return code

    def tail(self, count: int = 15) -> list[str]:
        return list(self.lines)[-count:] or ["(it printed nothing)"]


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        # uvicorn re-raises the signal it stopped for, so SIGTERM ends it "by SIGTERM".
        return f"ended by {signal.Signals(-code).name}"
    return f"exit code {code}"


class Output:
    """Serialises our lines and the children's prefixed lines on stdout."""

    COLORS = {
        "catalog": "36",
        "digitalocean": "35",
        "service": "32",
        "webhooks": "33",
        "dev-stack": "1",
    }

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._color = sys.stdout.isatty() and "NO_COLOR" not in os.environ

    def _paint(self, name: str, text: str) -> str:
        code = self.COLORS.get(name)
        return f"\033[{code}m{text}\033[0m" if self._color and code else text

    def child_line(self, name: str, line: str) -> None:
        self.write(f"{self._paint(name, f'[{name:<12}]')} {line}")

    def say(self, text: str = "") -> None:
        for line in text.splitlines() or [""]:
            self.write(f"{self._paint('dev-stack', '[dev-stack   ]')} {line}")

    def write(self, text: str) -> None:
        # A closed stdout (say `make run | tee` and Ctrl-C killed tee) must not
        # stop us from stopping the children.
        with self._lock, contextlib.suppress(OSError, ValueError):
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
