"""``python -m mocks.dev_stack``: the catalog mock, the fake DigitalOcean, the service and
a webhook receiver that prints every event of an order's life.

`make run` runs this from the repository root with the venv's python. It

1. checks that the three ports are free, and stops with a message naming a taken one;
2. works out the service's environment: a value from the environment or from `.env`
   wins; every other variable the dev stack needs gets a development default
   (HS256 with a dev secret, the dev internal API key, the two mocks' URLs, fast
   provisioning polls); it prints what is in use, hiding secrets that are not the
   dev ones;
3. migrates the database (`order-service migrate`);
4. starts the three processes, each in its own session with its own environment,
   their output prefixed with their name;
5. waits until each answers (`/health` on the mocks, `/api/v1/health/ready` on the
   service), or names the one that did not come up, with its last log lines;
6. prints a curl walkthrough;
   then registers the webhook receiver (port 4020) as an endpoint for every event and
   starts it with that endpoint's secret (never printed);
7. on SIGINT (Ctrl-C) or SIGTERM stops all four, the service first, and exits 0;
   if one of them dies on its own, stops the others and exits 1.

Only the standard library and python-dotenv (which pydantic-settings brings) are used,
so the script runs with the project's venv and nothing else.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from mocks.catalog_service.data import IMAGE_UBUNTU_ID, PLAN_BASIC_ID

REPO_ROOT = Path(__file__).resolve().parents[1]

# Used for a variable that neither the environment nor `.env` sets.
DEV_DEFAULTS: dict[str, str] = {
    "HOST": "127.0.0.1",
    "JWT_ALGORITHM": "HS256",
    "JWT_SECRET": "dev-only-secret-change-me-0123456789",
    "INTERNAL_API_KEY": "dev-internal-key",
    "CATALOG_SERVICE_URL": "http://127.0.0.1:{catalog_port}",
    "DIGITALOCEAN_API_URL": "http://127.0.0.1:{do_port}",
    "DIGITALOCEAN_API_TOKEN": "fake-do-token",
    "PROVISIONING_POLL_INTERVAL_MS": "1000",
    "PROVISIONING_MAX_ATTEMPTS": "120",
}
# The service's own defaults (SPEC section 2), shown when nothing else sets a variable.
SERVICE_DEFAULTS: dict[str, str] = {
    "DATABASE_URL": "sqlite+aiosqlite:///./order-service.db",
    "PORT": "3333",
    "LOG_FORMAT": "text",
}
SECRETS = frozenset({"JWT_SECRET", "INTERNAL_API_KEY", "DIGITALOCEAN_API_TOKEN", "JWT_PUBLIC_KEY"})
SHOWN = (
    "DATABASE_URL",
    "HOST",
    "PORT",
    "JWT_ALGORITHM",
    "JWT_SECRET",
    "JWT_PUBLIC_KEY",
    "INTERNAL_API_KEY",
    "CATALOG_SERVICE_URL",
    "DIGITALOCEAN_API_URL",
    "DIGITALOCEAN_API_TOKEN",
    "PROVISIONING_POLL_INTERVAL_MS",
    "PROVISIONING_MAX_ATTEMPTS",
    "LOG_FORMAT",
)
FAKE_DO_TOKEN = "fake-do-token"
LOG_LINES_KEPT = 40
STOP_TIMEOUT_S = 15.0


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class Resolved:
    """One variable as the service will see it, and where its value comes from."""

    value: str | None
    source: str  # "environment", ".env", "dev default", "service default" or "unset"

    def display(self, name: str) -> str:
        if self.value is None:
            return "(unset)"
        if name in SECRETS and self.source in ("environment", ".env"):
            dev = DEV_DEFAULTS.get(name)
            return self.value if self.value == dev else "******** (hidden)"
        if name == "JWT_PUBLIC_KEY":
            return "(a PEM key)"
        if name == "DATABASE_URL":
            return redact_url(self.value)
        return self.value


@dataclass
class StackConfig:
    """The service's environment, and where each shown variable comes from."""

    child_env: dict[str, str]
    resolved: dict[str, Resolved]
    dotenv_path: Path
    dotenv_found: bool
    defaults_used: list[str] = field(default_factory=list)

    def get(self, name: str) -> str | None:
        return self.resolved[name].value


def read_dotenv(path: Path) -> dict[str, str]:
    """`.env` as pydantic-settings reads it (python-dotenv), keys upper-cased."""
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {key.upper(): value for key, value in dotenv_values(path).items() if value is not None}


def resolve_config(
    environ: Mapping[str, str],
    dotenv: Mapping[str, str],
    *,
    catalog_port: int,
    do_port: int,
    service_port: int | None = None,
    dotenv_path: Path | None = None,
) -> StackConfig:
    """Environment > `.env` > dev default > the service's own default.

    Values from `.env` are not copied into the child's environment: the service reads
    `.env` itself (it runs in the repository root), exactly as it would without us.
    """
    env = {key.upper(): value for key, value in environ.items()}
    child_env = dict(environ)
    if service_port is not None:
        child_env["PORT"] = str(service_port)
        env["PORT"] = str(service_port)
    defaults = {
        name: value.format(catalog_port=catalog_port, do_port=do_port)
        for name, value in DEV_DEFAULTS.items()
    }
    user_set = set(env) | set(dotenv)
    if "JWT_PUBLIC_KEY" in user_set and "JWT_ALGORITHM" not in user_set:
        # Someone configured RS256 (the service's default algorithm); don't switch it.
        defaults.pop("JWT_ALGORITHM")
    used = []
    for name, value in defaults.items():
        if name not in user_set:
            child_env[name] = value
            used.append(name)
    resolved = {}
    for name in SHOWN:
        if name in env:
            resolved[name] = Resolved(env[name], "environment")
        elif name in dotenv:
            resolved[name] = Resolved(dotenv[name], ".env")
        elif name in used:
            resolved[name] = Resolved(defaults[name], "dev default")
        elif name in SERVICE_DEFAULTS:
            resolved[name] = Resolved(SERVICE_DEFAULTS[name], "service default")
        else:
            resolved[name] = Resolved(None, "unset")
    path = dotenv_path or REPO_ROOT / ".env"
    return StackConfig(child_env, resolved, path, bool(dotenv) or path.is_file(), used)


def redact_url(url: str) -> str:
    """Hide the password of a database URL."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":****@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def describe_config(config: StackConfig) -> list[str]:
    if config.dotenv_found:
        head = f"{config.dotenv_path} found: its values are used unless the environment overrides"
    else:
        head = f"no {config.dotenv_path}: dev defaults fill in what the environment doesn't set"
    lines = [f"configuration ({head}):"]
    for name in SHOWN:
        item = config.resolved[name]
        if item.source == "unset":
            continue
        lines.append(f"  {name:<30} {item.display(name):<45} [{item.source}]")
    return lines


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


# --------------------------------------------------------------------------- the stack


class Stop(Exception):
    """A signal asked us to stop."""


def walkthrough(base: str, token: str | None, api_key_line: str, boot_seconds: float) -> str:
    body = (
        f'{{"planId":"{PLAN_BASIC_ID}","imageId":"{IMAGE_UBUNTU_ID}",'
        f'"duration":"MONTHLY","couponCode":"HEMAT20"}}'
    )
    token_line = (
        f"TOKEN={token}   # order-service token --sub demo-user --ttl 86400"
        if token
        else "TOKEN=...   # `order-service token` failed, see above (RS256 needs --private-key)"
    )
    show = (
        "import json,sys; o=json.load(sys.stdin)['data']; t=o['provisioningTask'] or {}; "
        "print(o['status'], t.get('status'), t.get('dropletStatus'), t.get('ipv4Public'))"
    )
    show_action = (
        "import json,sys; a=json.load(sys.stdin)['data']; "
        "print(a['status'], a['type'], a['errorCode'] or '')"
    )
    return f"""\
Walk through an order (paste into another shell; needs curl and python3):

  BASE={base}
  {token_line}
  {api_key_line}

  # 1. create an order: Basic plan, Ubuntu 22.04, monthly, coupon HEMAT20
  #    (expect basePrice 100000, promoDiscount 10000, couponDiscount 18000, finalPrice 72000)
  ORDER_ID=$(curl -sS -X POST "$BASE/api/v1/orders" \\
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
    -d '{body}' \\
    | tee /dev/stderr | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
  echo; echo "order: $ORDER_ID"

  # 2. mark it paid (operator, X-API-Key): PENDING_PAYMENT -> PAID -> PROVISIONING
  curl -sS -X POST "$BASE/api/v1/internal/orders/$ORDER_ID/payment-status" \\
    -H "X-API-Key: $API_KEY" -H 'Content-Type: application/json' -d '{{"status":"PAID"}}'; echo

  # 3. watch it become ACTIVE (the fake droplet boots in {boot_seconds:g} s);
  #    prints: order status, task status, droplet status, public IPv4
  for i in $(seq 60); do
    S=$(curl -sS "$BASE/api/v1/orders/$ORDER_ID" -H "Authorization: Bearer $TOKEN" \\
        | python3 -c "{show}")
    echo "$S"; case "$S" in ACTIVE*|FAILED*) break;; esac; sleep 1
  done

  # 4. reboot the new server (a server action: 202, then PENDING -> IN_PROGRESS -> COMPLETED)
  ACTION_ID=$(curl -sS -X POST "$BASE/api/v1/orders/$ORDER_ID/actions" \\
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
    -d '{{"type":"REBOOT"}}' \\
    | tee /dev/stderr | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
  echo; echo "action: $ACTION_ID"
  for i in $(seq 60); do
    A=$(curl -sS "$BASE/api/v1/orders/$ORDER_ID/actions/$ACTION_ID" \\
        -H "Authorization: Bearer $TOKEN" | python3 -c "{show_action}")
    echo "$A"; case "$A" in COMPLETED*|FAILED*) break;; esac; sleep 1
  done

  # the operator's view, with the status history
  curl -sS "$BASE/api/v1/internal/orders/$ORDER_ID" -H "X-API-Key: $API_KEY" | python3 -m json.tool

API docs: {base}/docs   OpenAPI: {base}/openapi.json   metrics: {base}/metrics
Every event of the order's life is printed by the webhook receiver ([webhooks] lines).
Press Ctrl-C to stop all four."""


class DevStack:
    def __init__(self, args: argparse.Namespace, out: Output | None = None) -> None:
        self.args = args
        self.out = out or Output()
        self.children: list[Child] = []
        self.stop_signal: int | None = None
        # Woken by the signal itself: Python writes each signal's number to
        # this pipe at C level (signal.set_wakeup_fd), so the handler below
        # needs no lock. A handler that took one (threading.Event.set) could
        # deadlock on a lock the main thread held when the signal arrived.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    # -- signals

    def _on_signal(self, signum: int, _frame: object) -> None:
        # Runs in the main thread between any two bytecodes: only a plain assignment.
        if self.stop_signal is None:
            self.stop_signal = signum

    def _sleep(self, seconds: float) -> None:
        """Wait `seconds`, or less if a signal arrives."""
        readable, _, _ = select.select([self._wake_r], [], [], seconds)
        if readable:
            with contextlib.suppress(BlockingIOError):
                while os.read(self._wake_r, 512):
                    pass

    def _check_stop(self) -> None:
        if self.stop_signal is not None:
            raise Stop

    # -- steps

    def _service_command(self, *args: str) -> list[str]:
        script = Path(sys.executable).parent / "order-service"
        if script.exists():
            return [str(script), *args]
        return [sys.executable, "-m", "order_service", *args]

    def _config(self) -> StackConfig:
        dotenv_path = REPO_ROOT / ".env"
        return resolve_config(
            os.environ,
            read_dotenv(dotenv_path),
            catalog_port=self.args.catalog_port,
            do_port=self.args.do_port,
            service_port=self.args.service_port,
            dotenv_path=dotenv_path,
        )

    def _check_ports(self, ports: list[tuple[str, str, int]]) -> bool:
        ok = True
        for what, host, port in ports:
            if port_in_use(host, port):
                self.out.say(
                    f"ERROR: port {port} is already in use ({host}:{port} is needed by the "
                    f"{what}). Is another `make run` still running? Find the process with: "
                    f"ss -ltnp 'sport = :{port}'"
                )
                ok = False
        return ok

    def _migrate(self, env: Mapping[str, str]) -> bool:
        self.out.say("migrating the database: order-service migrate")
        result = subprocess.run(  # noqa: S603 - argv built by this module
            self._service_command("migrate"),
            cwd=REPO_ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        for line in (result.stdout + result.stderr).splitlines():
            self.out.child_line("migrate", line)
        if result.returncode != 0:
            self.out.say(
                f"ERROR: `order-service migrate` failed with exit code {result.returncode}"
            )
        return result.returncode == 0

    def _token(self, env: Mapping[str, str]) -> str | None:
        result = subprocess.run(  # noqa: S603 - argv built by this module
            self._service_command("token", "--sub", "demo-user", "--ttl", "86400"),
            cwd=REPO_ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            self.out.say(f"`order-service token` failed: {result.stderr.strip()}")
            return None
        return result.stdout.strip()

    def _wait_ready(self, timeout: float) -> Child | None:
        """Poll every child until it answers 200; return the one that failed, if any."""
        deadline = time.monotonic() + timeout
        pending = list(self.children)
        while pending:
            self._check_stop()
            for child in list(pending):
                if not child.alive():
                    return child
                if child.probe():
                    self.out.say(f"{child.name} is up: {child.ready_url} answered 200")
                    pending.remove(child)
            if pending and time.monotonic() > deadline:
                return pending[0]
            self._sleep(0.2)
        return None

    def _report_failure(self, child: Child, timeout: float) -> None:
        code = child.proc.poll() if child.proc is not None else None
        if code is not None:
            self.out.say(f"ERROR: {child.name} (pid {child.pid}) exited: {describe_exit(code)}.")
        else:
            self.out.say(
                f"ERROR: {child.name} did not come up: {child.ready_url} gave no 200 within "
                f"{timeout:g} s (last probe: {child.last_probe})."
            )
        self.out.say(f"last log lines of {child.name} ({' '.join(child.argv)}):")
        for line in child.tail():
            self.out.say(f"  | {line}")

    def stop_children(self, signum: int = signal.SIGTERM) -> None:
        """The service first (it may still call the mocks while it shuts down), then the mocks."""
        for child in reversed(self.children):
            if not child.alive():
                continue
            self.out.say(
                f"stopping {child.name} (pid {child.pid}) with {signal.Signals(signum).name}"
            )
            child.signal(signum)
            code = child.wait(STOP_TIMEOUT_S)
            if code is None:
                self.out.say(f"{child.name} still running after {STOP_TIMEOUT_S:g} s: SIGKILL")
                child.signal(signal.SIGKILL)
                code = child.wait(5)
            self.out.say(f"{child.name} stopped ({describe_exit(code)})")

    def run(self) -> int:
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)
        try:
            return self._run()
        finally:
            signal.set_wakeup_fd(-1)

    def _run(self) -> int:
        args = self.args
        config = self._config()
        for line in describe_config(config):
            self.out.say(line)
        try:
            service_port = int(config.get("PORT") or "3333")
        except ValueError:
            self.out.say(f"ERROR: PORT is not a number: {config.get('PORT')!r}")
            return 2
        service_host = config.get("HOST") or "0.0.0.0"
        probe_host = "127.0.0.1" if service_host in ("0.0.0.0", "::", "") else service_host
        self._warn_foreign_urls(config)

        if not self._check_ports(
            [
                ("catalog mock", "127.0.0.1", args.catalog_port),
                ("fake DigitalOcean", "127.0.0.1", args.do_port),
                ("order service", service_host, service_port),
                ("webhook receiver", "127.0.0.1", args.receiver_port),
            ]
        ):
            return 1
        try:
            self._check_stop()
            if not args.no_migrate and not self._migrate(config.child_env):
                return 1
            self._check_stop()
            self._start(config, probe_host, service_port)
            failed = self._wait_ready(args.timeout)
            if failed is not None:
                self._report_failure(failed, args.timeout)
                self.stop_children()
                return 1
            if not self._start_receiver(config, probe_host, service_port):
                self.stop_children()
                return 1
            self._print_ready(config, probe_host, service_port)
            return self._supervise()
        except Stop:
            pass
        assert self.stop_signal is not None
        self.out.say(f"got {signal.Signals(self.stop_signal).name}: stopping all four")
        self.stop_children(self.stop_signal)
        self.out.say("all stopped")
        return 0

    def _warn_foreign_urls(self, config: StackConfig) -> None:
        mine = {
            "CATALOG_SERVICE_URL": f"http://127.0.0.1:{self.args.catalog_port}",
            "DIGITALOCEAN_API_URL": f"http://127.0.0.1:{self.args.do_port}",
        }
        for name, url in mine.items():
            value = (config.get(name) or "").rstrip("/")
            if value and value != url and value != url.replace("127.0.0.1", "localhost"):
                self.out.say(f"note: {name}={value} does not point at the mock ({url})")

    def _start(self, config: StackConfig, probe_host: str, service_port: int) -> None:
        args = self.args
        py = sys.executable
        base_env = dict(os.environ)
        do_env = dict(base_env)
        # The fake accepts its usual token plus whatever token the service will send.
        tokens = [FAKE_DO_TOKEN]
        do_token = config.get("DIGITALOCEAN_API_TOKEN")
        if do_token and do_token not in tokens:
            tokens.append(do_token)
        do_env["FAKE_DO_TOKEN"] = ",".join(tokens)
        self.children = [
            Child(
                "catalog",
                [py, "-m", "mocks.catalog_service", "--port", str(args.catalog_port)],
                base_env,
                f"http://127.0.0.1:{args.catalog_port}/health",
                self.out,
            ),
            Child(
                "digitalocean",
                [
                    py,
                    "-m",
                    "mocks.digitalocean",
                    "--port",
                    str(args.do_port),
                    "--boot-seconds",
                    f"{args.boot_seconds:g}",
                ],
                do_env,
                f"http://127.0.0.1:{args.do_port}/health",
                self.out,
            ),
            Child(
                "service",
                self._service_command("serve"),
                config.child_env,
                f"http://{probe_host}:{service_port}/api/v1/health/ready",
                self.out,
            ),
        ]
        for child in self.children:
            child.start()
            self.out.say(f"started {child.name} (pid {child.pid}): {' '.join(child.argv)}")

    def _start_receiver(self, config: StackConfig, probe_host: str, service_port: int) -> bool:
        """Register the receiver for every event, then start it with the endpoint's secret."""
        from mocks.webhook_receiver.register import register_receiver

        port = str(self.args.receiver_port)
        url = f"http://127.0.0.1:{port}/hook"
        try:
            secret = register_receiver(
                f"http://{probe_host}:{service_port}", config.get("INTERNAL_API_KEY") or "", url
            )
        except (OSError, ValueError, KeyError) as exc:
            self.out.say(f"ERROR: could not register the webhook receiver: {exc}")
            return False
        self.out.say(f"registered {url} as a webhook endpoint for every event")
        receiver = Child(
            "webhooks",
            [sys.executable, "-m", "mocks.webhook_receiver", "--port", port],
            {**os.environ, "WEBHOOK_SECRET": secret},
            f"http://127.0.0.1:{port}/health",
            self.out,
        )
        self.children.append(receiver)
        receiver.start()
        self.out.say(f"started webhooks (pid {receiver.pid}): {' '.join(receiver.argv)}")
        failed = self._wait_ready(self.args.timeout)
        if failed is not None:
            self._report_failure(failed, self.args.timeout)
            return False
        return True

    def _print_ready(self, config: StackConfig, probe_host: str, service_port: int) -> None:
        base = f"http://{probe_host}:{service_port}"
        children = {child.name: child for child in self.children}
        catalog, digitalocean, service = (
            children["catalog"],
            children["digitalocean"],
            children["service"],
        )
        self.out.say("")
        self.out.say("all four are up:")
        self.out.say(
            f"  catalog mock       http://127.0.0.1:{self.args.catalog_port}  (pid {catalog.pid})"
        )
        self.out.say(
            f"  fake DigitalOcean  http://127.0.0.1:{self.args.do_port}  (pid {digitalocean.pid})"
        )
        self.out.say(f"  order service      {base}  (pid {service.pid})")
        receiver = children["webhooks"]
        self.out.say(
            f"  webhook receiver   http://127.0.0.1:{self.args.receiver_port}/hook"
            f"  (pid {receiver.pid})"
        )
        text = walkthrough(
            base, self._token(config.child_env), self._api_key_line(config), self.args.boot_seconds
        )
        # Unprefixed, so it pastes as it is.
        rule = "-" * 78
        self.out.write(f"\n{rule}\n{text}\n{rule}\n")

    @staticmethod
    def _api_key_line(config: StackConfig) -> str:
        item = config.resolved["INTERNAL_API_KEY"]
        if item.source == "dev default" or item.value == DEV_DEFAULTS["INTERNAL_API_KEY"]:
            return f"API_KEY={item.value}"
        if item.source == "environment":
            return 'API_KEY="$INTERNAL_API_KEY"   # from your environment'
        return "API_KEY=$(sed -n 's/^INTERNAL_API_KEY=//p' .env)   # from .env"

    def _supervise(self) -> int:
        """Until a signal: if a child dies on its own, stop the rest and fail."""
        while True:
            self._check_stop()
            for child in self.children:
                if not child.alive():
                    self._report_failure(child, self.args.timeout)
                    self.out.say("stopping the others")
                    self.stop_children()
                    return 1
            self._sleep(0.5)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mocks.dev_stack",
        description="Run the catalog mock, the fake DigitalOcean and the order service together.",
    )
    parser.add_argument("--catalog-port", type=int, default=4000, help="default 4000")
    parser.add_argument("--do-port", type=int, default=4010, help="default 4010")
    parser.add_argument("--receiver-port", type=int, default=4020, help="default 4020")
    parser.add_argument(
        "--service-port", type=int, default=None, help="overrides PORT (default: PORT, else 3333)"
    )
    parser.add_argument(
        "--boot-seconds", type=float, default=3.0, help="fake droplet boot time (default 3)"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for each (default 60)"
    )
    parser.add_argument("--no-migrate", action="store_true", help="skip `order-service migrate`")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    if shutil.which("curl") is None:
        print("[dev-stack   ] note: curl is not installed; the walkthrough below uses it")
    return DevStack(parse_args(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
