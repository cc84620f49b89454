"""Check the image's start commands and environment without a Docker engine.

What `docker-compose -f docker-compose.order-service.yml up` would run, run here:

1. build the wheel the Dockerfile's builder stage builds, and check that it carries
   the migrations;
2. install it, with constraints.txt and without dev tools, into a throwaway venv
   (the runtime stage), and run `order-service migrate` on a temporary SQLite file
   from a directory that has no alembic/ folder;
3. take the `api` and `worker` containers' environments from `docker-compose
   config` (env_file .env.docker plus `environment:`) and the image's ENV, CMD and
   HEALTHCHECK from the Dockerfile; point the hostnames postgres / catalog /
   digitalocean at 127.0.0.1 (free ports for the mocks and the service, the given
   PostgreSQL database for DATABASE_URL);
4. start the two mock services with their compose commands;
5. one process, the image's own CMD (migrate, then exec serve): run it as PID 1 of
   a new PID namespace, as in a container, when `unshare` allows it; wait for
   /api/v1/health/ready = 200, run the HEALTHCHECK command, walk one order to
   ACTIVE through the mocks, check the log lines are JSON, SIGTERM it and require
   exit code 0 within 15 s;
6. the compose file's roles: its `api` command (migrate, then `serve --no-duties`)
   and its `worker` command, each as PID 1 as above; the HEALTHCHECK against the
   api, the worker's compose healthcheck on WORKER_PORT, one order to ACTIVE (the
   api takes it, the worker provisions it), JSON logs; SIGTERM the worker (exit 0
   within 10 s), then the api (exit 0 within 15 s).

Usage (from the repository root, with the project's venv python):
    python .ci/container_check.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/DB
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.order-service.yml"
DOCKERFILE = REPO / "Dockerfile"
MOCK_SERVICES = ("catalog", "digitalocean")
ROLES = ("api", "worker")
STOP_LIMIT_S = 15.0
# SPEC section 12: a worker finishes or releases what it holds within 10 s.
WORKER_STOP_LIMIT_S = 10.0


class CheckFailed(Exception):
    pass


def step(title: str) -> float:
    print(f"\n--- {title}", flush=True)
    return time.monotonic()


def done(started: float, what: str = "ok") -> None:
    print(f"    {what} ({time.monotonic() - started:.1f} s)", flush=True)


def run(argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    print(f"    $ {shlex.join(argv)}", flush=True)
    result = subprocess.run(  # noqa: S603 - argv built here
        list(argv), text=True, capture_output=True, check=False, **kwargs
    )
    if result.returncode != 0:
        raise CheckFailed(
            f"`{shlex.join(argv)}` exited {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------ Dockerfile


def dockerfile_stages(path: Path) -> list[list[tuple[str, str]]]:
    """(INSTRUCTION, arguments) per stage, continuation lines joined."""
    joined: list[str] = []
    current = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        joined.append(current + line)
        current = ""
    stages: list[list[tuple[str, str]]] = []
    for line in joined:
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword.upper(), rest.strip()))
    return stages


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """The final stage's instructions."""
    return dockerfile_stages(path)[-1]


def builder_context(path: Path, context: Path) -> None:
    """Lay out the first stage's `COPY` sources as `docker build` would (from the repo)."""
    skip = shutil.ignore_patterns("__pycache__", "*.py[cod]", "*.egg-info")
    for keyword, rest in dockerfile_stages(path)[0]:
        if keyword != "COPY":
            continue
        parts = [part for part in shlex.split(rest) if not part.startswith("--")]
        *sources, destination = parts
        target = context / destination
        for source in sources:
            origin = REPO / source
            if origin.is_dir():  # a directory's contents go into the destination
                shutil.copytree(origin, target, symlinks=True, ignore=skip, dirs_exist_ok=True)
            elif destination.endswith("/"):
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target / origin.name)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)


def image_env(instructions: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in instructions:
        if keyword == "ENV":
            for item in shlex.split(rest):
                key, sep, value = item.partition("=")
                if not sep:
                    raise CheckFailed(f"ENV {rest!r}: use the KEY=VALUE form")
                env[key] = value
    return env


def exec_form(instructions: list[tuple[str, str]], keyword: str) -> list[str]:
    for found, rest in reversed(instructions):
        if found != keyword:
            continue
        if keyword == "HEALTHCHECK":
            rest = rest[rest.index("CMD ") + 4 :].strip()
        argv = json.loads(rest)
        if not (isinstance(argv, list) and all(isinstance(a, str) for a in argv)):
            raise CheckFailed(f"{keyword} must be in exec (JSON array) form: {rest}")
        return argv
    raise CheckFailed(f"the Dockerfile's final stage has no {keyword}")


# ------------------------------------------------------------------ compose


def compose_services(compose: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGITALOCEAN_")}
    result = run([compose, "-f", str(COMPOSE_FILE), "config"], env=env, cwd=REPO)
    return yaml.safe_load(result.stdout)["services"]


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def with_option(argv: list[str], name: str, value: str) -> list[str]:
    argv = list(argv)
    argv[argv.index(name) + 1] = value
    return argv


# ------------------------------------------------------------------ HTTP


def http(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
    request.add_header("Content-Type", "application/json")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def wait_for_200(url: str, timeout: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CheckFailed(f"{url}: the process exited ({proc.returncode}):\n{tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310
                if answer.status == 200:
                    return
                last = f"HTTP {answer.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.25)
    raise CheckFailed(f"{url} gave no 200 within {timeout:g} s (last: {last}):\n{tail(log)}")


def tail(log: Path, lines: int = 25) -> str:
    text = log.read_text(errors="replace").splitlines() if log.exists() else []
    return "\n".join(f"    | {line}" for line in text[-lines:]) or "    | (no output)"


# ------------------------------------------------------------------ the check


class Check:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.venv = work / "venv"
        self.app_dir = work / "app"  # the container's WORKDIR: no alembic/, no .env
        self.app_dir.mkdir()
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.pid1 = False  # the commands run as PID 1 of a PID namespace (unshare)

    def wheel(self) -> Path:
        started = step("build the wheel (Dockerfile builder stage) and list its migrations")
        # Only what the builder stage copies, so a missing COPY shows here.
        context = self.work / "build-context"
        builder_context(DOCKERFILE, context)
        print(f"    build context: {sorted(p.name for p in context.iterdir())}")
        out = self.work / "wheels"
        run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(context)])
        wheels = list(out.glob("order_service-*.whl"))
        if len(wheels) != 1:
            raise CheckFailed(f"expected one wheel, found {wheels}")
        names = set(zipfile.ZipFile(wheels[0]).namelist())
        wanted = {"order_service/migrations/env.py", "order_service/migrations/script.py.mako"}
        wanted |= {
            f"order_service/migrations/versions/{p.name}"
            for p in (REPO / "alembic" / "versions").glob("*.py")
        }
        missing = sorted(wanted - names)
        if missing:
            raise CheckFailed(f"the wheel lacks migration files: {missing}")
        for name in sorted(n for n in names if "/migrations/" in n):
            print(f"    {name}")
        done(started, f"{wheels[0].name}: {len(names)} files, all {len(wanted)} migration files")
        return wheels[0]

    def install(self, wheel: Path) -> None:
        started = step("install the wheel with constraints.txt into a throwaway venv (runtime)")
        run([sys.executable, "-m", "venv", str(self.venv)])
        run(
            [
                str(self.venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "-c",
                str(REPO / "constraints.txt"),
                str(wheel),
            ]
        )
        dev_tools = [
            tool
            for tool in ("pytest", "ruff", "schemathesis")
            if (self.venv / "bin" / tool).exists()
        ]
        if dev_tools:
            raise CheckFailed(f"dev tools ended up in the runtime install: {dev_tools}")
        done(started)

    def base_env(self) -> dict[str, str]:
        return {
            "PATH": f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.app_dir),
            "LANG": "C.UTF-8",
        }

    def migrate_sqlite(self) -> None:
        started = step("order-service migrate on a temporary SQLite file, from another directory")
        database = self.work / "migrate-check.db"
        env = self.base_env() | {"DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
        run(["order-service", "migrate"], env=env, cwd=self.app_dir)
        with contextlib.closing(sqlite3.connect(database)) as connection:
            tables = {
                row[0]
                for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            version = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        expected = {"orders", "order_items", "provisioning_tasks", "status_history"}
        if not expected <= tables:
            raise CheckFailed(f"tables after migrate: {sorted(tables)}")
        done(started, f"alembic_version {version}, tables {sorted(tables)}")

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = self.work / f"{name}.log"
        print(f"    $ {shlex.join(argv)}   (log: {log})", flush=True)
        proc = subprocess.Popen(  # noqa: S603 - argv from the compose file / Dockerfile
            argv,
            env=env,
            cwd=self.app_dir,
            stdin=subprocess.DEVNULL,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append((name, proc))
        return proc

    def container(self) -> None:
        started = step("container environments: docker-compose config + Dockerfile ENV/CMD")
        services = compose_services(self.args.compose)
        instructions = dockerfile_instructions(DOCKERFILE)
        cmd = exec_form(instructions, "CMD")
        healthcheck = exec_form(instructions, "HEALTHCHECK")
        stop_signal = dict(instructions).get("STOPSIGNAL", "SIGTERM")
        if stop_signal != "SIGTERM":
            raise CheckFailed(f"STOPSIGNAL is {stop_signal}, expected SIGTERM")
        missing = [role for role in ROLES if role not in services]
        if missing:
            raise CheckFailed(f"the compose file has no service {missing}")

        ports = {name: free_port() for name in (*MOCK_SERVICES, *ROLES)}
        rewrites = {}
        mock_argv = {}
        for name in MOCK_SERVICES:
            argv = [str(a) for a in services[name]["command"]]
            rewrites[f"//{name}:{option(argv, '--port')}"] = f"//127.0.0.1:{ports[name]}"
            argv = with_option(argv, "--host", "127.0.0.1")
            mock_argv[name] = with_option(argv, "--port", str(ports[name]))
        envs = {role: self.role_env(role, services[role], instructions, rewrites) for role in ROLES}
        for env in envs.values():
            env["PORT"] = str(ports["api"])
            env["WORKER_PORT"] = str(ports["worker"])
        for role in ROLES:
            print(f"    {role}:")
            for key in sorted(envs[role]):
                shown = (
                    "****" if any(s in key for s in ("SECRET", "KEY", "TOKEN")) else envs[role][key]
                )
                print(f"      {key}={shown}")
        done(started)

        started = step("start the mock services with their compose commands")
        mocks = {}
        for name in MOCK_SERVICES:
            mock_env = self.base_env() | image_env(instructions)
            for key, value in (services[name].get("environment") or {}).items():
                mock_env[key] = str(REPO) if str(value) == "/app" else str(value)
            mocks[name] = self.start(name, mock_argv[name], mock_env)
        for name, proc in mocks.items():
            wait_for_200(
                f"http://127.0.0.1:{ports[name]}/health", 30, proc, self.work / f"{name}.log"
            )
        done(started, "both answer /health")

        self.pid1 = self.args.pid_namespace and pid_namespace_works()
        print(f"\n    commands run as PID 1 of a new PID namespace: {'yes' if self.pid1 else 'no'}")
        api_base = f"http://127.0.0.1:{ports['api']}"

        # One process, as `docker run` of the image: the API and every duty.
        one_env = envs["api"] | envs["worker"]
        started = step(f"one process, the image's CMD: {shlex.join(cmd)}")
        one = self.start_role("one-process", cmd, one_env, f"{api_base}/api/v1/health/ready")
        done(started, f"{api_base}/api/v1/health/ready answered 200")
        self.healthcheck("the image's HEALTHCHECK", healthcheck, one_env)
        self.walk("one-process", api_base, one_env)
        self.json_logs("one-process")
        self.stop_role("one-process", one, STOP_LIMIT_S)

        # The compose file's roles: the API alone and the duties alone.
        api_cmd = [str(a) for a in services["api"].get("command") or cmd]
        started = step(f"compose service api: {shlex.join(api_cmd)}")
        api = self.start_role("api", api_cmd, envs["api"], f"{api_base}/api/v1/health/ready")
        done(started, f"{api_base}/api/v1/health/ready answered 200")
        self.healthcheck("the image's HEALTHCHECK, in api", healthcheck, envs["api"])

        worker_cmd = [str(a) for a in services["worker"]["command"]]
        worker_base = f"http://127.0.0.1:{ports['worker']}"
        started = step(f"compose service worker: {shlex.join(worker_cmd)}")
        worker = self.start_role(
            "worker", worker_cmd, envs["worker"], f"{worker_base}/api/v1/health/ready"
        )
        done(started, f"{worker_base}/api/v1/health/ready answered 200")
        test = [str(a) for a in services["worker"]["healthcheck"]["test"]]
        if test[0] != "CMD":
            raise CheckFailed(f"the worker's healthcheck must be in CMD form: {test}")
        self.healthcheck("the worker's compose healthcheck", test[1:], envs["worker"])

        self.walk("api + worker", api_base, envs["api"])
        self.json_logs("api")
        self.json_logs("worker")
        self.stop_role("worker", worker, WORKER_STOP_LIMIT_S)
        self.stop_role("api", api, STOP_LIMIT_S)

    def role_env(
        self,
        role: str,
        service: dict[str, Any],
        instructions: list[tuple[str, str]],
        rewrites: dict[str, str],
    ) -> dict[str, str]:
        """The container's environment of `role`, its hostnames and ports made local."""
        if service.get("env_file") or "environment" not in service:
            raise CheckFailed(f"docker-compose config did not resolve {role}'s env_file")
        container_env = {k: str(v) for k, v in service["environment"].items()}
        if "@postgres:" not in container_env.get("DATABASE_URL", ""):
            raise CheckFailed(f"DATABASE_URL of {role} in the compose file does not use `postgres`")
        env = self.base_env() | image_env(instructions)
        for key, value in container_env.items():
            for old, new in rewrites.items():
                value = value.replace(old, new)
            env[key] = value
        env["DATABASE_URL"] = self.args.database_url
        env["HOST"] = "127.0.0.1"
        return env

    def start_role(
        self, name: str, argv: list[str], env: dict[str, str], ready_url: str
    ) -> subprocess.Popen[bytes]:
        if self.pid1:
            argv = ["unshare", "--pid", "--fork", "--kill-child", *argv]
        proc = self.start(name, argv, env)
        wait_for_200(ready_url, 90, proc, self.work / f"{name}.log")
        return proc

    def healthcheck(self, what: str, argv: list[str], env: dict[str, str]) -> None:
        started = step(f"{what}: {shlex.join(argv)}")
        run(argv, env=env, cwd=self.app_dir, timeout=10)
        done(started, "exit code 0")

    def walk(self, what: str, base: str, env: dict[str, str]) -> None:
        started = step(f"one order through {what}: create, pay, ACTIVE")
        self.walk_order(base, env)
        done(started)

    def json_logs(self, name: str) -> None:
        started = step(f"{name}: log lines are JSON (LOG_FORMAT from the image)")
        log = self.work / f"{name}.log"
        lines = log.read_text(errors="replace").splitlines()
        parsed = [line for line in lines if _is_json_object(line)]
        if not parsed:
            raise CheckFailed(f"no JSON log line in the output of {name}:\n{tail(log)}")
        done(started, f"{len(parsed)} of {len(lines)} lines are JSON objects")

    def stop_role(self, name: str, proc: subprocess.Popen[bytes], limit: float) -> None:
        started = step(f"SIGTERM: {name} must exit 0 within {limit:g} s")
        log = self.work / f"{name}.log"
        os.kill(namespace_init(proc.pid) if self.pid1 else proc.pid, signal.SIGTERM)
        try:
            code = proc.wait(limit)
        except subprocess.TimeoutExpired:
            raise CheckFailed(
                f"{name} still running {limit:g} s after SIGTERM:\n{tail(log)}"
            ) from None
        # Outside a PID namespace uvicorn re-raises SIGTERM after its clean shutdown
        # (`serve`); the worker handles the signal itself and exits 0 either way.
        clean = (0,) if self.pid1 or name == "worker" else (0, -signal.SIGTERM)
        if code not in clean:
            raise CheckFailed(f"{name}: exit code {code} after SIGTERM:\n{tail(log)}")
        print(tail(log, 6))
        done(started, f"exit code {code}")

    def walk_order(self, base: str, env: dict[str, str]) -> None:
        token = run(
            ["order-service", "token", "--sub", "ci-container-check"], env=env, cwd=self.app_dir
        ).stdout.strip()
        user = {"Authorization": f"Bearer {token}"}
        operator = {"X-API-Key": env["INTERNAL_API_KEY"]}
        sys.path.insert(0, str(REPO))
        from mocks.catalog_service.data import IMAGE_UBUNTU_ID, PLAN_BASIC_ID

        body = {"planId": PLAN_BASIC_ID, "imageId": IMAGE_UBUNTU_ID, "duration": "MONTHLY"}
        status, answer = http("POST", f"{base}/api/v1/orders", body, user)
        if status != 201:
            raise CheckFailed(f"create order: {status} {answer}")
        order_id = answer["data"]["id"]
        print(f"    order {order_id}: {answer['data']['status']}")
        url = f"{base}/api/v1/internal/orders/{order_id}/payment-status"
        status, answer = http("POST", url, {"status": "PAID"}, operator)
        if status != 200:
            raise CheckFailed(f"mark paid: {status} {answer}")
        deadline = time.monotonic() + self.args.active_timeout
        seen = None
        while time.monotonic() < deadline:
            status, answer = http("GET", f"{base}/api/v1/orders/{order_id}", None, user)
            order = answer["data"]
            task = order.get("provisioningTask") or {}
            now = (order["status"], task.get("status"), task.get("dropletStatus"))
            if now != seen:
                print(f"    {now[0]} (task {now[1]}, droplet {now[2]})", flush=True)
                seen = now
            if order["status"] == "ACTIVE":
                print(f"    droplet {task.get('dropletId')} at {task.get('ipv4Public')}")
                return
            if order["status"] == "FAILED":
                raise CheckFailed(f"provisioning FAILED: {task}")
            time.sleep(0.5)
        raise CheckFailed(f"order not ACTIVE after {self.args.active_timeout:g} s: {seen}")

    def cleanup(self) -> None:
        for name, proc in reversed(self.processes):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                print(f"    stopped {name} ({proc.returncode})")


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def pid_namespace_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "--kill-child", "true"],  # noqa: S607
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def namespace_init(unshare_pid: int) -> int:
    """The host pid of the process that `unshare --fork` started (PID 1 inside)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        children = Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise CheckFailed("could not find the process unshare started")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="a fresh PostgreSQL database")
    parser.add_argument("--compose", default="docker-compose", help="docker-compose binary")
    parser.add_argument("--active-timeout", type=float, default=90.0)
    parser.add_argument(
        "--no-pid-namespace",
        dest="pid_namespace",
        action="store_false",
        help="run the CMD as an ordinary process (exit code 143 then counts as clean)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="order-service-container-check-") as tmp:
        check = Check(args, Path(tmp))
        try:
            check.install(check.wheel())
            check.migrate_sqlite()
            check.container()
        except CheckFailed as exc:
            print(f"\ncontainer check FAILED: {exc}", file=sys.stderr, flush=True)
            return 1
        finally:
            check.cleanup()
    print("\ncontainer check passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
