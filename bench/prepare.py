"""What a bench run prepares: the plan of storms, a fresh seeded database with its
catalog mock (Setup), and the service's sources when a run measures other code
(patched, or as at an older commit)."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import api, seed, stack
from bench.infra import REPO, Proc, log, workdir

STORM_SIZES = (100, 500)
# The largest storm also runs with this many processes on one database (issue 11).
STORM_PROCESSES = (1, 3)
MEMORY_TASKS = 1000


@dataclass(frozen=True)
class StormRun:
    orders: int
    processes: int
    kill_after_s: float | None = None
    # Two processes: the probed one serves reads only (no duties, no payments), the
    # other takes the payments and runs the duties (docs/operations.md, "Reads during a storm").
    split: bool = False
    # Issue 23's roles: the probed process and the one taking the payments are both
    # `serve --no-duties`; one `order-service worker` runs the duties.
    roles: bool = False
    # Issue 20: the fake DO holds this many accounts (tokens), the service uses them all.
    accounts: int = 1


def storm_plan(args: argparse.Namespace) -> list[StormRun]:
    """100 and 500 orders with one process, 500 with three, every size with reads and
    writes on separate processes (unless --no-storm-split), the largest size with roles
    (--storm-roles times; its probe is pooled over them), 3x the largest size over 3 DO
    accounts (--storm-accounts; one process, and with roles), and the kill run when asked."""
    sizes = args.storm_sizes or ((STORM_SIZES[0],) if args.quick else STORM_SIZES)
    counts = sorted(set(args.storm_processes))
    runs = [StormRun(size, 1) for size in sizes] if 1 in counts else []
    runs += [StormRun(max(sizes), p) for p in counts if p > 1]
    if args.storm_split:
        runs += [StormRun(size, 2, split=True) for size in sizes]
    roles = args.storm_roles if args.storm_roles is not None else (1 if args.quick else 3)
    runs += [StormRun(max(sizes), 2, roles=True) for _ in range(roles)]
    if args.storm_accounts > 1:
        # One process, and the roles (API-only processes and a worker), as v1.2 deploys
        # a storm of this size.
        accounts = args.storm_accounts
        runs.append(StormRun(max(sizes) * accounts, 1, accounts=accounts))
        runs.append(StormRun(max(sizes) * accounts, 2, roles=True, accounts=accounts))
    if args.storm_kill_after is not None and counts[-1] > 1:
        runs.append(StormRun(max(sizes), counts[-1], args.storm_kill_after))
    return runs


class Setup:
    """Fresh database, seed, catalog mock; stopped on exit."""

    def __init__(self, *, payable: int, storms: tuple[int, ...], memory: int) -> None:
        self.dir = workdir()
        started = time.monotonic()
        seed.recreate_database()
        self.seeded = seed.seed(10_000, payable, list(storms), memory)
        self.seed_seconds = round(time.monotonic() - started, 1)
        self.user_ids_file = self.dir / "user-order-ids.txt"
        self.user_ids_file.write_text("\n".join(self.seeded.user_order_ids) + "\n")
        self.pay_ids_file = self.dir / "payable-order-ids.txt"
        self.pay_ids_file.write_text("\n".join(self.seeded.payable_ids) + "\n")
        # The first payable order no phase has paid yet: each phase that pays starts
        # there and moves it on (an order paid twice is a fast 409, not a payment).
        self.pay_cursor = 0
        self.catalog: Proc = stack.start_catalog(self.dir)
        log(f"database ready in {self.seed_seconds}s; work dir {self.dir}")
        seed.warn_about_connections(needed=90)

    def api_context(self) -> api.ApiContext:
        """The load context of a phase that drives the API; its payments start at the
        first order no earlier phase paid."""
        return api.ApiContext(
            self.dir,
            self.catalog,
            self.user_ids_file,
            self.pay_ids_file,
            len(self.seeded.payable_ids),
            pay_cursor=self.pay_cursor,
            setup=self,
        )

    def close(self) -> None:
        self.catalog.stop()


def patched_src(patches: list[Path], requirements: list[str] | None = None) -> str:
    """PYTHONPATH for the patched service: a copy of src/ with the patches applied
    (plus a folder with extra requirements installed, if any)."""
    root = workdir("order-service-patched-")
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "constraints.txt"):
        shutil.copy(REPO / name, root / name)
    for patch in patches:
        # Only src/ runs from the copy: a dependency change in pyproject.toml needs
        # --with-pip to take effect for the patched service.
        subprocess.run(
            ["patch", "-p1", "-s", "-d", str(root), "-i", str(patch.resolve())], check=True
        )
    paths = [str(root / "src")]
    if requirements:
        site = root / "site"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--target",
                str(site),
                *requirements,
            ],
            check=True,
        )
        paths.append(str(site))
    return ":".join(paths)


def commit_src(commit: str) -> str:
    """PYTHONPATH holding src/ as it was at `commit` (git archive: touches no git state)."""
    root = workdir(f"order-service-{commit[:10]}-")
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, "src"], cwd=REPO, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True)
    return str(root / "src")
