"""The phases of `python -m bench`: each measures one thing against a prepared Setup
and returns what bench/results/<phase>.json records."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import api, load, stack
from bench.infra import REPO, RESULTS_DIR, Proc, stopping
from bench.prepare import MEMORY_TASKS, Setup, commit_src, patched_src, storm_plan

# The api phase's target serving payments with `serve --no-duties` (issue 23).
API_ONLY = "ours-api-only"


def _api_stage(
    args: argparse.Namespace, setup: Setup
) -> tuple[tuple[str, ...], api.ApiContext, Proc, dict[str, str]]:
    """What every API-driving phase starts from: the endpoints asked for, the load
    context, the fake DO (stop it with `stopping`) and the service's environment."""
    endpoints = tuple(e for e in args.endpoints.split(",") if e)
    ctx = setup.api_context()
    fake = stack.start_fake_do(setup.dir, boot_seconds=2.0, per_minute=250)
    return endpoints, ctx, fake, stack.service_env(setup.catalog, fake)


def phase_api(args: argparse.Namespace, setup: Setup) -> dict[str, Any]:
    endpoints, ctx, fake, env = _api_stage(args, setup)
    targets = [
        api.Target("ours", "ours", lambda: stack.start_service(setup.dir, env, name="ours")),
        api.Target("ceiling", "ceiling", lambda: stack.start_ceiling(setup.dir, setup.catalog)),
    ]
    if "pay" in endpoints:
        # Issue 23: payments on an API-only process, the duties in a worker beside it,
        # so each payment still starts real provisioning, only not in this process.
        targets.append(
            api.Target(
                API_ONLY,
                "ours",
                lambda: stack.start_service(setup.dir, env, name=API_ONLY, duties=False),
                companion=lambda: stack.start_worker(setup.dir, env, name="api-only-worker"),
                endpoints=("pay",),
            )
        )
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
                split=run.split,
                roles=run.roles,
                accounts=run.accounts,
            )
        )
    return {"storms": results}


def phase_placement(args: argparse.Namespace, setup: Setup) -> dict[str, Any]:
    """Issue 20: payments/s with 1 and with 10 DO accounts, the same total DO budget."""
    from bench.placement import run_placement

    return run_placement(
        setup, reps=args.reps, duration=args.duration, default_pair=args.placement_default_pair
    )


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
    endpoints, ctx, fake, env = _api_stage(args, setup)
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
    endpoints, ctx, fake, env = _api_stage(args, setup)
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
