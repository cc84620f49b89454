"""`python -m mocks.dev_stack` (what `make run` runs): settings, ports, the whole stack."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mocks.catalog_service.data import IMAGE_UBUNTU_ID, PLAN_BASIC_ID, PLAN_STANDARD_ID
from mocks.dev_stack import (
    DEV_DEFAULTS,
    DevStack,
    Output,
    parse_args,
    port_in_use,
    redact_url,
    resolve_config,
)
from mocks.dev_stack.walkthrough import DEMO_PUBLIC_KEY, HOSTNAME
from tests.servers import free_port

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ settings


def test_dev_defaults_fill_what_nothing_else_sets() -> None:
    config = resolve_config({}, {}, catalog_port=4000, do_port=4010)
    assert config.child_env["JWT_ALGORITHM"] == "HS256"
    assert config.child_env["JWT_SECRET"] == DEV_DEFAULTS["JWT_SECRET"]
    assert config.child_env["INTERNAL_API_KEY"] == "dev-internal-key"
    assert config.child_env["CATALOG_SERVICE_URL"] == "http://127.0.0.1:4000"
    assert config.child_env["DIGITALOCEAN_API_URL"] == "http://127.0.0.1:4010"
    assert config.child_env["DIGITALOCEAN_API_TOKEN"] == "fake-do-token"
    assert config.child_env["PROVISIONING_POLL_INTERVAL_MS"] == "1000"
    assert config.child_env["PROVISIONING_MAX_ATTEMPTS"] == "120"
    # A fixed, public dev key: orders without SSH keys (a first-access password) work.
    assert config.child_env["SECRETS_KEY"] == DEV_DEFAULTS["SECRETS_KEY"]
    assert config.resolved["JWT_SECRET"].source == "dev default"
    # The dev secret is public, so it is shown as it is.
    assert config.resolved["JWT_SECRET"].display("JWT_SECRET") == DEV_DEFAULTS["JWT_SECRET"]
    assert config.resolved["DATABASE_URL"].source == "service default"


def test_environment_and_dotenv_win_and_their_secrets_are_hidden() -> None:
    config = resolve_config(
        {"JWT_SECRET": "my-own-secret-value", "PATH": "/usr/bin"},
        {"INTERNAL_API_KEY": "key-from-dotenv", "CATALOG_SERVICE_URL": "http://catalog:9"},
        catalog_port=4000,
        do_port=4010,
    )
    assert config.child_env["JWT_SECRET"] == "my-own-secret-value"
    # `.env` values are left to the service, which reads `.env` itself.
    assert "INTERNAL_API_KEY" not in config.child_env
    assert "CATALOG_SERVICE_URL" not in config.child_env
    assert config.resolved["JWT_SECRET"].source == "environment"
    assert config.resolved["INTERNAL_API_KEY"].source == ".env"
    for name in ("JWT_SECRET", "INTERNAL_API_KEY"):
        shown = config.resolved[name].display(name)
        assert "hidden" in shown
        assert "secret-value" not in shown and "dotenv" not in shown


def test_an_rs256_setup_is_not_switched_to_hs256() -> None:
    config = resolve_config(
        {}, {"JWT_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----"}, catalog_port=1, do_port=2
    )
    assert "JWT_ALGORITHM" not in config.child_env


def test_service_port_flag_overrides_port() -> None:
    config = resolve_config({"PORT": "9999"}, {}, catalog_port=1, do_port=2, service_port=7777)
    assert config.child_env["PORT"] == "7777"
    assert config.resolved["PORT"].value == "7777"


def test_database_password_is_redacted() -> None:
    url = "postgresql+asyncpg://orders:s3cret@db:5432/orders"
    assert redact_url(url) == "postgresql+asyncpg://orders:****@db:5432/orders"
    assert redact_url("sqlite+aiosqlite:///./x.db") == "sqlite+aiosqlite:///./x.db"


# ------------------------------------------------------------------ processes


class StackProcess:
    """`python -m mocks.dev_stack` with its output collected line by line."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv
            [sys.executable, "-m", "mocks.dev_stack", *args],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        for line in self.lines:
            if match := regex.search(line):
                return match
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                break
            self.lines.append(line)
            if match := regex.search(line):
                return match
        raise AssertionError(f"no line matching {pattern!r}; output:\n" + "\n".join(self.lines))

    def drain(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        while (line := self._queue.get(timeout=5)) is not None:
            self.lines.append(line)
        return code

    def output(self) -> str:
        return "\n".join(self.lines)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _pids(stack: StackProcess) -> dict[str, int]:
    found = re.findall(r"started (\w+) \(pid (\d+)\)", stack.output())
    return {name: int(pid) for name, pid in found}


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def ports() -> dict[str, int]:
    return {
        "catalog": free_port(),
        "do": free_port(),
        "service": free_port(),
        "receiver": free_port(),
    }


@pytest.fixture
def stack_env(ports: dict[str, int], tmp_path: Path) -> dict[str, str]:
    """The dev defaults, set explicitly so a developer's `.env` cannot change the test."""
    env = dict(os.environ)
    for name, value in DEV_DEFAULTS.items():
        env[name] = value.format(catalog_port=ports["catalog"], do_port=ports["do"])
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'dev-stack.db'}"
    env["PROVISIONING_POLL_INTERVAL_MS"] = "200"
    env["NO_COLOR"] = "1"
    return env


def _args(ports: dict[str, int]) -> list[str]:
    return [
        "--catalog-port",
        str(ports["catalog"]),
        "--do-port",
        str(ports["do"]),
        "--service-port",
        str(ports["service"]),
        "--receiver-port",
        str(ports["receiver"]),
        "--boot-seconds",
        "0.3",
    ]


@pytest.fixture
def stack(ports: dict[str, int], stack_env: dict[str, str]) -> Iterator[StackProcess]:
    process = StackProcess(*_args(ports), env=stack_env)
    yield process
    process.kill()
    for pid in _pids(process).values():
        if not _gone(pid):
            os.killpg(pid, signal.SIGKILL)


def test_a_taken_port_stops_it_with_a_message_naming_the_port(
    ports: dict[str, int], stack_env: dict[str, str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports["do"]))
        taken.listen()
        stack = StackProcess(*_args(ports), "--no-migrate", env=stack_env)
        try:
            assert stack.drain(timeout=30) == 1
        finally:
            stack.kill()
    assert f"port {ports['do']} is already in use" in stack.output()
    assert "started" not in stack.output()


@pytest.mark.slow
def test_the_walkthrough_works_and_ctrl_c_stops_all_four(
    stack: StackProcess, ports: dict[str, int]
) -> None:
    stack.wait_for(r"Press Ctrl-C to stop all four", timeout=60)
    pids = _pids(stack)
    assert set(pids) == {"catalog", "digitalocean", "service", "webhooks"}
    token = stack.wait_for(r"^\s*TOKEN=(\S+)", timeout=1).group(1)
    assert "API_KEY=dev-internal-key" in stack.output()

    base = f"http://127.0.0.1:{ports['service']}"
    user = {"Authorization": f"Bearer {token}"}
    ops = {"X-API-Key": "dev-internal-key"}
    with httpx.Client(base_url=base, timeout=10) as client:
        # 0. and 1. of the walkthrough: the plan's regions, then the demo SSH key.
        regions = client.get("/api/v1/regions", params={"planId": PLAN_BASIC_ID}, headers=user)
        assert "sgp1" in [region["slug"] for region in regions.json()["data"]], regions.text
        key = client.post(
            "/api/v1/ssh-keys",
            headers=user,
            json={"name": "my laptop", "publicKey": DEMO_PUBLIC_KEY},
        )
        assert key.status_code == 201, key.text
        plain = {"planId": PLAN_BASIC_ID, "imageId": IMAGE_UBUNTU_ID, "duration": "MONTHLY"}
        created = client.post(
            "/api/v1/orders",
            headers=user,
            json={
                **plain,
                "couponCode": "HEMAT20",
                "hostname": HOSTNAME,
                "region": "sgp1",
                "sshKeyIds": [key.json()["data"]["id"]],
            },
        )
        assert created.status_code == 201, created.text
        order = created.json()["data"]
        assert order["pricing"]["finalPrice"] == 72000
        assert (order["access"], order["hostname"]) == ("SSH_KEYS", HOSTNAME)
        # Without keys: a password order, which the dev SECRETS_KEY makes possible.
        with_password = client.post("/api/v1/orders", headers=user, json=plain)
        assert with_password.status_code == 201, with_password.text
        assert with_password.json()["data"]["access"] == "PASSWORD"
        ids = [order["id"], with_password.json()["data"]["id"]]
        for order_id in ids:
            paid = client.post(
                f"/api/v1/internal/orders/{order_id}/payment-status",
                headers={"X-API-Key": "dev-internal-key"},
                json={"status": "PAID"},
            )
            assert paid.status_code == 200, paid.text
        for order_id in ids:
            deadline = time.monotonic() + 30
            status = None
            while time.monotonic() < deadline:
                status = client.get(f"/api/v1/orders/{order_id}", headers=user).json()["data"]
                if status["status"] in ("ACTIVE", "FAILED"):
                    break
                time.sleep(0.2)
            assert status is not None and status["status"] == "ACTIVE", status
        # 5. of the walkthrough: the first login.
        keys_login = client.get(f"/api/v1/orders/{ids[0]}/credentials", headers=user).json()
        assert keys_login["data"]["password"] is None and keys_login["data"]["sshKeys"]
        password_login = client.get(f"/api/v1/orders/{ids[1]}/credentials", headers=user)
        assert len(password_login.json()["data"]["password"]) >= 20, password_login.text
        # 4. of the walkthrough: reboot the new server, follow the action to COMPLETED.
        reboot = client.post(
            f"/api/v1/orders/{order['id']}/actions", headers=user, json={"type": "REBOOT"}
        )
        assert reboot.status_code == 202, reboot.text
        action_url = f"/api/v1/orders/{order['id']}/actions/{reboot.json()['data']['id']}"
        deadline = time.monotonic() + 30
        action = reboot.json()["data"]
        while time.monotonic() < deadline and action["status"] not in ("COMPLETED", "FAILED"):
            time.sleep(0.2)
            action = client.get(action_url, headers=user).json()["data"]
        assert action["status"] == "COMPLETED", action
        # 7. of the walkthrough: the upgrade to Standard, paid by ops, resized in place.
        change = client.post(
            f"/api/v1/orders/{order['id']}/plan-changes",
            headers=user,
            json={"planId": PLAN_STANDARD_ID},
        )
        assert change.status_code == 201, change.text
        if change.json()["data"]["status"] == "PENDING_PAYMENT":
            paid = client.post(
                f"/api/v1/internal/plan-changes/{change.json()['data']['id']}/payment-status",
                headers=ops,
                json={"status": "PAID"},
            )
            assert paid.status_code == 200, paid.text
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            changes = client.get(f"/api/v1/orders/{order['id']}/plan-changes", headers=user)
            latest = changes.json()["data"][0]
            if latest["status"] in ("COMPLETED", "FAILED"):
                break
            time.sleep(0.3)
        assert latest["status"] == "COMPLETED", latest
        upgraded = client.get(f"/api/v1/orders/{order['id']}", headers=user).json()["data"]
        assert upgraded["planId"] == PLAN_STANDARD_ID and upgraded["planChangedAt"]
        # The end of the walkthrough: a second DO account, the fake's second token.
        second = client.post(
            "/api/v1/internal/do-accounts",
            headers=ops,
            json={"name": "second", "token": "fake-do-token-2"},
        )
        assert second.status_code == 201, second.text
        assert second.json()["data"]["health"] == "HEALTHY"
    # The webhook receiver verified and printed the order's life, one line per event.
    stack.wait_for(rf"\[webhooks\s*\] order\.active {HOSTNAME} \d+\.\d+\.\d+\.\d+", timeout=20)
    short = ids[1][:8]
    stack.wait_for(rf"\[webhooks\s*\] order\.active vps-{short} \d+\.\d+\.\d+\.\d+", timeout=20)
    stack.wait_for(r"\[webhooks\s*\] action\.completed", timeout=20)
    assert "REJECTED" not in stack.output()

    stack.proc.send_signal(signal.SIGINT)
    assert stack.drain(timeout=40) == 0, stack.output()
    assert "all stopped" in stack.output()
    for name, pid in pids.items():
        assert _gone(pid), f"{name} (pid {pid}) is still running"


@pytest.mark.slow
def test_when_a_child_dies_the_others_are_stopped(stack: StackProcess) -> None:
    stack.wait_for(r"Press Ctrl-C to stop all four", timeout=60)
    pids = _pids(stack)
    os.kill(pids["catalog"], signal.SIGKILL)
    assert stack.drain(timeout=40) == 1
    assert re.search(r"catalog \(pid \d+\) exited: ended by SIGKILL", stack.output())
    for name, pid in pids.items():
        assert _gone(pid), f"{name} (pid {pid}) is still running"


# ------------------------------------------------------------------ signals at any moment


def test_the_signal_handler_calls_nothing_that_could_take_a_lock() -> None:
    # A handler runs in the main thread wherever it was interrupted; one that
    # takes a lock (threading.Event.set did) deadlocks if that thread held it.
    stack = DevStack(parse_args([]), out=Output())
    calls: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code.co_name != "_on_signal":
            calls.append(f"{frame.f_code.co_filename}:{frame.f_code.co_name}")
        elif event == "c_call":
            calls.append(getattr(arg, "__qualname__", repr(arg)))

    sys.setprofile(profile)
    try:
        stack._on_signal(signal.SIGTERM, None)
        stack._on_signal(signal.SIGINT, None)
    finally:
        sys.setprofile(None)
    assert [c for c in calls if c != "setprofile"] == []
    assert stack.stop_signal == signal.SIGTERM  # the first one counts


# The moments of start-up a signal can arrive at (None: right after the process started).
SIGNAL_POINTS = {
    "at once": None,
    "while migrating": r"migrating the database",
    "while the children start": r"started service \(pid",
    "during the walkthrough": r"all four are up:",
    "once ready": r"Press Ctrl-C to stop all four",
}


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM])
@pytest.mark.parametrize("point", list(SIGNAL_POINTS))
def test_a_signal_at_any_point_of_start_up_stops_everything(
    stack: StackProcess, ports: dict[str, int], point: str, signum: int
) -> None:
    pattern = SIGNAL_POINTS[point]
    if pattern is not None:
        stack.wait_for(pattern, timeout=60)
    stack.proc.send_signal(signum)
    code = stack.drain(timeout=40)
    # Before its handler is installed, the default action ends the process.
    assert code in (0, -signum), stack.output()
    for name, pid in _pids(stack).items():
        assert _wait_gone(pid), f"{name} (pid {pid}) is still running:\n{stack.output()}"
    for what, port in ports.items():
        assert not port_in_use("127.0.0.1", port), f"{what} port {port} is still taken"
    if pattern is not None and code == 0:
        assert "all stopped" in stack.output()


def _wait_gone(pid: int, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while not _gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
