"""Starting the pieces: catalog mock, fake DigitalOcean, the service, the ceiling app."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import jwt

from bench.infra import (
    DO_TOKEN,
    INTERNAL_API_KEY,
    JWT_SECRET,
    REPO,
    VENV_BIN,
    Proc,
    clean_env,
    db_url,
    free_port,
    log,
    start,
)

# uvicorn options the service's `serve` uses (src/order_service/cli.py), for the ceiling.
UVICORN_FAST = ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]


def token(sub: str, ttl: int = 6 * 3600) -> str:
    now = int(time.time())
    return jwt.encode({"sub": sub, "iat": now, "exp": now + ttl}, JWT_SECRET, algorithm="HS256")


def start_catalog(workdir: Path) -> Proc:
    port = free_port()
    return start(
        "catalog-mock",
        [sys.executable, "-m", "mocks.catalog_service", "--port", str(port)],
        env=clean_env({"PYTHONPATH": str(REPO)}),
        port=port,
        ready_path="/health",
        workdir=workdir,
    )


def start_fake_do(
    workdir: Path,
    *,
    boot_seconds: float = 2.0,
    per_minute: int = 250,
    name: str = "fake-do",
    tokens: Sequence[str] | None = None,
) -> Proc:
    """The fake DigitalOcean; `tokens` (default: DO_TOKEN alone) are each an account of
    their own there, with their own rate window of `per_minute` and their own droplets."""
    port = free_port()
    token_args = [arg for t in (tokens or (DO_TOKEN,)) for arg in ("--token", t)]
    return start(
        name,
        [
            sys.executable,
            "-m",
            "mocks.digitalocean",
            "--port",
            str(port),
            "--boot-seconds",
            str(boot_seconds),
            "--per-minute",
            str(per_minute),
            "--per-hour",
            str(max(5000, per_minute * 10)),
            *token_args,
        ],
        env=clean_env({"PYTHONPATH": str(REPO)}),
        port=port,
        ready_path="/health",
        workdir=workdir,
    )


BENCH_SECRETS_KEY = "YmVuY2gtb25seS1zZWNyZXRzLWtleS0wMTIzNDU2Nzg="


def service_env(
    catalog: Proc, fake_do: Proc | None, *, log_level: str = "WARNING", **extra: str
) -> dict[str, str]:
    env = {
        "DATABASE_URL": db_url(),
        "HOST": "127.0.0.1",
        "JWT_ALGORITHM": "HS256",
        "JWT_SECRET": JWT_SECRET,
        "INTERNAL_API_KEY": INTERNAL_API_KEY,
        "CATALOG_SERVICE_URL": catalog.url,
        "DIGITALOCEAN_API_URL": fake_do.url if fake_do else "http://127.0.0.1:9",
        "DIGITALOCEAN_API_TOKEN": DO_TOKEN,
        "PROVISIONING_POLL_INTERVAL_MS": "1000",
        "LOG_LEVEL": log_level,
        # The load runs create thousands of unpaid orders for a few users: the
        # abuse limit (default 10 per user) would turn them into 429s.
        "MAX_UNPAID_ORDERS_PER_USER": "0",
        # Orders without SSH keys get a first-access password, kept encrypted (SPEC §14):
        # a fixed bench-only Fernet key (public, like every value here).
        "SECRETS_KEY": BENCH_SECRETS_KEY,
    }
    env.update({k.upper(): v for k, v in extra.items()})
    return env


def start_service(
    workdir: Path,
    env: dict[str, str],
    *,
    workers: int = 1,
    src: str | None = None,
    name: str = "service",
    duties: bool = True,
) -> Proc:
    """`order-service serve` as users run it (from `src` instead of the repo's when given);
    `duties=False` is `serve --no-duties`, the API alone (SPEC section 12)."""
    port = free_port()
    extra = {**env, "PORT": str(port)}
    if src is not None:
        extra["PYTHONPATH"] = src
    proc = start(
        name,
        [
            str(VENV_BIN / "order-service"),
            "serve",
            "--workers",
            str(workers),
            *([] if duties else ["--no-duties"]),
        ],
        env=clean_env(extra),
        port=port,
        ready_path="/api/v1/health/ready",
        workdir=workdir,
    )
    if workers > 1:
        _wait_workers(proc, workers)
    log(f"{name} up on {proc.url} (pid {proc.pid}, {workers} worker(s))")
    return proc


def start_worker(workdir: Path, env: dict[str, str], *, name: str = "worker") -> Proc:
    """`order-service worker`: the duties alone, beside an API-only `serve --no-duties`."""
    port = free_port()
    proc = start(
        name,
        [str(VENV_BIN / "order-service"), "worker"],
        env=clean_env({**env, "WORKER_PORT": str(port)}),
        port=port,
        ready_path="/api/v1/health/ready",
        workdir=workdir,
    )
    log(f"{name} up on {proc.url} (pid {proc.pid})")
    return proc


def start_ceiling(workdir: Path, catalog: Proc, *, workers: int = 1) -> Proc:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.ceiling:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        *UVICORN_FAST,
    ]
    if workers > 1:
        argv += ["--workers", str(workers)]
    proc = start(
        f"ceiling-{workers}w",
        argv,
        env=clean_env(
            {
                "PYTHONPATH": str(REPO),
                "CEILING_DATABASE_URL": db_url("postgresql"),
                "CEILING_CATALOG_URL": catalog.url,
                "CEILING_JWT_SECRET": JWT_SECRET,
                "CEILING_API_KEY": INTERNAL_API_KEY,
            }
        ),
        port=port,
        ready_path="/api/v1/health/ready",
        workdir=workdir,
    )
    if workers > 1:
        _wait_workers(proc, workers)
    log(f"ceiling up on {proc.url} (pid {proc.pid}, {workers} worker(s))")
    return proc


def _wait_workers(proc: Proc, workers: int, within: float = 30) -> None:
    """With --workers, the first ready answer may come before every worker serves."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        # Supervisor + N workers (+ multiprocessing's resource tracker, if any).
        if len(proc.pids()) >= workers + 1:
            time.sleep(1.5)
            return
        time.sleep(0.2)
