"""`python -m bench {all,api,storm,memory,webhooks,lifecycle,compare,profile,render} [--quick]`

Every phase starts from a fresh database `order_service_bench` (dropped and
created again, then migrated with `order-service migrate` and seeded with
COPY), its own catalog mock and fake DigitalOcean, and the service started as
users start it (`order-service serve`). Results go to bench/results/*.json
(gitignored); docs/benchmarks.md is rendered from them.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import api, load, report, seed, stack
from bench.infra import REPO, RESULTS_DIR, Proc, log, machine, stopping, workdir

STORM_SIZES = (100, 500)
# The largest storm also runs with this many processes on one database (issue 11).
STORM_PROCESSES = (1, 3)
MEMORY_TASKS = 1000


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class StormRun:
    orders: int
    processes: int
    kill_after_s: float | None = None


def storm_plan(args: argparse.Namespace) -> list[StormRun]:
    """100 and 500 orders with one process, 500 with three (and the kill run when asked)."""
    sizes = args.storm_sizes or ((STORM_SIZES[0],) if args.quick else STORM_SIZES)
    counts = sorted(set(args.storm_processes))
    runs = [StormRun(size, 1) for size in sizes] if 1 in counts else []
    runs += [StormRun(max(sizes), p) for p in counts if p > 1]
    if args.storm_kill_after is not None and counts[-1] > 1:
        runs.append(StormRun(max(sizes), counts[-1], args.storm_kill_after))
    return runs


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "phase",
        nargs="?",
        default="all",
        choices=[
            "all",
            "api",
            "storm",
            "memory",
            "webhooks",
            "lifecycle",
            "compare",
            "profile",
            "render",
        ],
    )
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument("--duration", type=float, help="seconds per load run (default 4; quick 3)")
    parser.add_argument("--reps", type=int, help="repetitions (default 3; quick 1)")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="uvicorn workers of the multi-process run (default 2)",
    )
    parser.add_argument(
        "--endpoints", default=",".join(api.ENDPOINTS), help="subset of detail,list,create,pay"
    )
    parser.add_argument(
        "--patch",
        action="append",
        type=Path,
        default=[],
        help="compare/profile: a diff against src/ (patch -p1 from the repo root); repeatable",
    )
    parser.add_argument(
        "--with-pip",
        action="append",
        default=[],
        help="compare/profile: also give the patched service this PyPI requirement "
        "(pip install --target a temp dir on its PYTHONPATH), e.g. for a dependency fix",
    )
    parser.add_argument(
        "--after-env",
        action="append",
        default=[],
        help="compare/profile: NAME=VALUE for the patched service only (a settings change)",
    )
    parser.add_argument(
        "--before-commit",
        help="compare: the 'before' service runs this commit's src/ (git archive, read-only); "
        "'after' is the working tree (plus any --patch)",
    )
    parser.add_argument("--label", default="", help="compare/profile: name of the result file")
    parser.add_argument("--no-install", action="store_true", help="never apt-get install wrk")
    parser.add_argument(
        "--memory-paid",
        action="store_true",
        help="memory: also measure 1,000 orders paid at once through the API (+100 s)",
    )
    parser.add_argument("--no-render", action="store_true", help="leave docs/benchmarks.md alone")
    parser.add_argument(
        "--storm-sizes",
        type=_ints,
        help="storm: orders paid at once, comma-separated (default 100,500; quick 100)",
    )
    parser.add_argument(
        "--storm-processes",
        type=_ints,
        default=STORM_PROCESSES,
        help="storm: every size runs with 1 process, the largest also with each other count "
        "here (default 1,3)",
    )
    parser.add_argument(
        "--storm-kill-after",
        type=float,
        metavar="SECONDS",
        help="storm: one more run of the largest size with the most processes, SIGKILLing one "
        "of them this long after the payments were sent (once all are answered)",
    )
    parser.add_argument(
        "--webhook-orders",
        type=int,
        help="webhooks: orders paid at once with one endpoint (default 1000; quick 200)",
    )
    parser.add_argument(
        "--webhook-seconds",
        type=float,
        help="webhooks: seconds of steady load per dead-endpoint run (default 20; quick 5)",
    )
    parser.add_argument(
        "--lifecycle-sizes",
        type=_ints,
        help="lifecycle: ACTIVE orders per scan measurement (default 10000,100000; quick 500,2000)",
    )
    return parser


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
        self.catalog: Proc = stack.start_catalog(self.dir)
        log(f"database ready in {self.seed_seconds}s; work dir {self.dir}")
        seed.warn_about_connections(needed=90)

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


def _save(name: str, payload: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=1, default=str) + "\n")
    log(f"wrote {path.relative_to(REPO)}")
    return path


def _command() -> str:
    return " ".join(["python -m bench", *(shlex.quote(a) for a in sys.argv[1:])])


# ------------------------------------------------------------------ phases


def phase_api(args: argparse.Namespace, setup: Setup) -> dict[str, Any]:
    endpoints = tuple(e for e in args.endpoints.split(",") if e)
    ctx = api.ApiContext(
        setup.dir,
        setup.catalog,
        setup.user_ids_file,
        setup.pay_ids_file,
        len(setup.seeded.payable_ids),
    )
    fake = stack.start_fake_do(setup.dir, boot_seconds=2.0, per_minute=250)
    env = stack.service_env(setup.catalog, fake)
    targets = [
        api.Target("ours", "ours", lambda: stack.start_service(setup.dir, env, name="ours")),
        api.Target("ceiling", "ceiling", lambda: stack.start_ceiling(setup.dir, setup.catalog)),
    ]
    if args.workers > 1:
        name = f"ours-{args.workers}w"
        targets.append(
            api.Target(
                name,
                "ours",
                lambda: stack.start_service(setup.dir, env, workers=args.workers, name=name),
            )
        )
    with stopping(fake):
        try:
            started = time.monotonic()
            runs = api.run_api(
                ctx, targets, reps=args.reps, duration=args.duration, endpoints=endpoints
            )
            check = api.loadgen_check(ctx, targets[1], args.duration)
            # Only `ours` stays up beside the INFO-logging copy: with every target
            # up, their pools (request, background, budget listener) outgrew
            # PostgreSQL's 100 connections and the copy never got ready.
            for target in targets[1:]:
                target.down()
            logging_runs = _logging_runs(ctx, targets[0], env, setup, args)
            elapsed = time.monotonic() - started
        finally:
            for target in targets:
                target.down()
    return {
        "config": {
            "duration_s": args.duration,
            "reps": args.reps,
            "workers": args.workers,
            "connections": [16, 64],
            "tool": load.ensure_wrk(),
            "payable_used": ctx.pay_cursor,
            "seconds": round(elapsed, 1),
        },
        "runs": runs,
        "summary": api.summarize(runs),
        "loadgen_check": check,
        "logging": logging_runs,
    }


def _logging_runs(
    ctx: api.ApiContext,
    ours: api.Target,
    env: dict[str, str],
    setup: Setup,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Is the access log on the hot path? GET detail at 16 clients, WARNING vs INFO."""
    info = api.Target(
        "ours-log-info",
        "ours",
        lambda: stack.start_service(setup.dir, {**env, "LOG_LEVEL": "INFO"}, name="ours-log-info"),
    )
    runs: list[dict[str, Any]] = []
    sub = api.ApiContext(ctx.workdir, ctx.catalog, ctx.user_ids_file, ctx.pay_ids_file, 0)
    try:
        info.up()
        api.warm(sub, info, ("detail",))
        for rep in range(max(1, min(args.reps, 2))):
            for target in (ours, info) if rep % 2 == 0 else (info, ours):
                runs.append(api.one_run(sub, target, "detail", 16, args.duration, rep=rep))
    finally:
        info.down()
    return {"runs": runs}


def phase_storm(args: argparse.Namespace, setup: Setup, src: str | None = None) -> dict[str, Any]:
    from bench.storm import run_storm

    # Setup seeded one pool of fresh orders for all the runs (see main): each takes its own.
    pool = [i for ids in setup.seeded.storm_ids.values() for i in ids]
    results = []
    for run in storm_plan(args):
        ids, pool = pool[: run.orders], pool[run.orders :]
        results.append(
            run_storm(
                setup.dir,
                setup.catalog,
                ids,
                setup.user_ids_file,
                src=src,
                processes=run.processes,
                kill_after_s=run.kill_after_s,
            )
        )
    return {"storms": results}


def phase_memory(args: argparse.Namespace, setup: Setup, src: str | None = None) -> dict[str, Any]:
    from bench.memory import run_memory

    ids = setup.seeded.memory_ids
    half = len(ids) // 2 if args.quick else MEMORY_TASKS
    return run_memory(
        setup.dir,
        setup.catalog,
        ids[:half],
        setup.user_ids_file,
        src=src,
        scenario_b_ids=ids[half : half + MEMORY_TASKS] if args.memory_paid else None,
    )


def phase_webhooks(args: argparse.Namespace, setup: Setup) -> dict[str, Any]:
    from bench.webhooks import DEAD_SECONDS, STORM_ORDERS, run_webhooks

    orders = args.webhook_orders or (200 if args.quick else STORM_ORDERS)
    seconds = args.webhook_seconds or (5.0 if args.quick else DEAD_SECONDS)
    # Repetitions of the dead/none pair: alternated, 3 by default (--reps), 1 quick.
    return run_webhooks(
        setup.dir,
        setup.catalog,
        setup.user_ids_file,
        orders=orders,
        reps=args.reps,
        seconds=seconds,
    )


def phase_lifecycle(args: argparse.Namespace) -> dict[str, Any]:
    from bench.lifecycle import DRAIN, QUICK_DRAIN, QUICK_SIZES, SIZES, run_lifecycle

    due, window = QUICK_DRAIN if args.quick else DRAIN
    return run_lifecycle(
        args.lifecycle_sizes or (QUICK_SIZES if args.quick else SIZES),
        drain_due=due,
        drain_window_s=window,
    )


def phase_compare(args: argparse.Namespace, setup: Setup) -> dict[str, Any]:
    """Before/after: the service as it is, with the patches applied, and the ceiling."""
    if not (args.patch or args.with_pip or args.after_env or args.before_commit):
        raise SystemExit(
            "compare needs --patch FILE, --with-pip REQ, --after-env NAME=VALUE or --before-commit"
        )
    src = patched_src(args.patch, args.with_pip) if args.patch or args.with_pip else None
    before_src = commit_src(args.before_commit) if args.before_commit else None
    after_env = {**dict(a.split("=", 1) for a in args.after_env)}
    endpoints = tuple(e for e in args.endpoints.split(",") if e)
    ctx = api.ApiContext(
        setup.dir,
        setup.catalog,
        setup.user_ids_file,
        setup.pay_ids_file,
        len(setup.seeded.payable_ids),
    )
    fake = stack.start_fake_do(setup.dir, boot_seconds=2.0, per_minute=250)
    env = stack.service_env(setup.catalog, fake)
    targets = [
        api.Target(
            "before",
            "ours",
            lambda: stack.start_service(setup.dir, env, src=before_src, name="before"),
        ),
        api.Target(
            "after",
            "ours",
            lambda: stack.start_service(setup.dir, env | after_env, src=src, name="after"),
        ),
        api.Target("ceiling", "ceiling", lambda: stack.start_ceiling(setup.dir, setup.catalog)),
    ]
    with stopping(fake):
        try:
            runs = api.run_api(
                ctx, targets, reps=args.reps, duration=args.duration, endpoints=endpoints
            )
        finally:
            for target in targets:
                target.down()
    return {
        "patches": [str(p) for p in args.patch],
        "before_commit": args.before_commit,
        "with_pip": args.with_pip,
        "after_env": after_env,
        "config": {"duration_s": args.duration, "reps": args.reps, "endpoints": endpoints},
        "runs": runs,
        "summary": api.summarize(runs),
    }


def phase_profile(args: argparse.Namespace, setup: Setup) -> dict[str, Any]:
    """py-spy on the service (patched if --patch) under wrk, one profile per endpoint."""
    from bench.flame import summarize as flame

    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        raise SystemExit(
            "profile needs py-spy: .venv/bin/pip install -c constraints.txt -e '.[bench]'"
        )
    src = patched_src(args.patch, args.with_pip) if args.patch or args.with_pip else None
    if args.before_commit:
        src = commit_src(args.before_commit)
    endpoints = tuple(e for e in args.endpoints.split(",") if e)
    ctx = api.ApiContext(
        setup.dir,
        setup.catalog,
        setup.user_ids_file,
        setup.pay_ids_file,
        len(setup.seeded.payable_ids),
    )
    fake = stack.start_fake_do(setup.dir, boot_seconds=2.0, per_minute=250)
    env = stack.service_env(setup.catalog, fake)
    target = api.Target("ours", "ours", lambda: stack.start_service(setup.dir, env, src=src))
    profiles: dict[str, Any] = {}
    label = args.label or ("patched" if args.patch else "as-is")
    with stopping(fake):
        try:
            proc = target.up()
            for endpoint in endpoints:
                api.warm(ctx, target, (endpoint,))
                raw = RESULTS_DIR / f"profile-{label}-{endpoint}.txt"
                RESULTS_DIR.mkdir(parents=True, exist_ok=True)
                seconds = max(4, int(args.duration * 2))
                recorder = subprocess.Popen(
                    [
                        spy,
                        "record",
                        "-p",
                        str(proc.pid),
                        "-d",
                        str(seconds),
                        "-r",
                        "250",
                        "-f",
                        "raw",
                        "-o",
                        str(raw),
                        "--nonblocking",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                run = api.one_run(ctx, target, endpoint, 16, seconds + 1, rep=0)
                recorder.wait(60)
                profiles[endpoint] = {"run": run, "raw": str(raw.relative_to(REPO)), **flame(raw)}
        finally:
            target.down()
    return {"label": label, "patches": [str(p) for p in args.patch], "profiles": profiles}


# ------------------------------------------------------------------ main


def main() -> int:
    args = _parser().parse_args()
    if args.duration is None:
        args.duration = 3.0 if args.quick else 4.0
    if args.reps is None:
        args.reps = 1 if args.quick else 3
    if args.phase == "render":
        report.render()
        return 0
    load.ensure_wrk(install=not args.no_install)
    began = time.monotonic()
    facts = machine() | {"command": _command()}
    phases = (
        ["api", "storm", "memory", "webhooks", "lifecycle"] if args.phase == "all" else [args.phase]
    )
    # Payable orders: enough for every payment run at the fastest rate seen here, x3.
    payable = 0
    if {"api", "compare", "profile"} & set(phases) and "pay" in args.endpoints:
        payable = int(700 * (args.duration + 1) * 2 * args.reps * 3 * 1.3) + 3000
    setup = Setup(
        payable=payable,
        storms=(sum(r.orders for r in storm_plan(args)),) if "storm" in phases else (),
        memory=2 * MEMORY_TASKS if "memory" in phases else 0,
    )
    # storm and memory can run a patched service too (results then get the label).
    src = None
    if args.phase in ("storm", "memory") and (args.patch or args.with_pip):
        src = patched_src(args.patch, args.with_pip)
    try:
        for phase in phases:
            log(f"=== phase {phase}")
            started = time.monotonic()
            if phase == "api":
                result = phase_api(args, setup)
            elif phase == "storm":
                result = phase_storm(args, setup, src)
            elif phase == "memory":
                result = phase_memory(args, setup, src)
            elif phase == "webhooks":
                result = phase_webhooks(args, setup)
            elif phase == "lifecycle":
                result = phase_lifecycle(args)
            elif phase == "compare":
                result = phase_compare(args, setup)
            else:
                result = phase_profile(args, setup)
            result["machine"] = facts
            result["phase_seconds"] = round(time.monotonic() - started, 1)
            result["quick"] = args.quick
            name = phase
            if phase in ("compare", "profile") or src is not None:
                name = f"{phase}-{args.label or 'patched'}"
            _save(name, result)
    finally:
        setup.close()
    total = time.monotonic() - began
    if args.phase not in ("compare", "profile") and src is None:
        summary = {"phases": phases, "seconds": round(total, 1), "quick": args.quick}
        _save("run", facts | summary | {"seed_seconds": setup.seed_seconds})
    log(f"all done in {total:.0f}s")
    if not args.no_render:
        report.render()
    return 0


if __name__ == "__main__":
    sys.exit(main())
