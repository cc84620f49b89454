"""The dev stack itself: start, watch and stop the four processes (`make run`)."""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from mocks.dev_stack.children import STOP_TIMEOUT_S, Child, Output, describe_exit, port_in_use
from mocks.dev_stack.config import (
    DEV_DEFAULTS,
    REPO_ROOT,
    StackConfig,
    describe_config,
    read_dotenv,
    resolve_config,
)
from mocks.dev_stack.walkthrough import walkthrough

# The fake accepts this token besides whatever token the service will send.
FAKE_DO_TOKEN = "fake-do-token"
# A second account of the fake, for trying several DO accounts (docs/accounts.md):
# add it with POST /api/v1/internal/do-accounts {"name": "second", "token": ...}.
SECOND_DO_TOKEN = "fake-do-token-2"


class Stop(Exception):
    """A signal asked us to stop."""


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

    def _run_service(self, env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        """One `order-service` command to completion, its output captured."""
        return subprocess.run(  # noqa: S603 - argv built by this module
            self._service_command(*args),
            cwd=REPO_ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )

    def _migrate(self, env: Mapping[str, str]) -> bool:
        self.out.say("migrating the database: order-service migrate")
        result = self._run_service(env, "migrate")
        for line in (result.stdout + result.stderr).splitlines():
            self.out.child_line("migrate", line)
        if result.returncode != 0:
            self.out.say(
                f"ERROR: `order-service migrate` failed with exit code {result.returncode}"
            )
        return result.returncode == 0

    def _token(self, env: Mapping[str, str]) -> str | None:
        result = self._run_service(env, "token", "--sub", "demo-user", "--ttl", "86400")
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
        tokens = [FAKE_DO_TOKEN, SECOND_DO_TOKEN]
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
