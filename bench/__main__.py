"""`python -m bench {all,api,storm,placement,memory,webhooks,lifecycle,compare,profile,render}`

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
import sys
import time
from pathlib import Path
from typing import Any

from bench import api, load, report
from bench.infra import REPO, RESULTS_DIR, log, machine
from bench.phases import (
    phase_api,
    phase_compare,
    phase_lifecycle,
    phase_memory,
    phase_placement,
    phase_profile,
    phase_storm,
    phase_webhooks,
)
from bench.placement import runs_planned as placement_runs
from bench.prepare import MEMORY_TASKS, STORM_PROCESSES, Setup, patched_src, storm_plan


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


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
            "placement",
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
        "--storm-split",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="storm: every size also with two processes, the probed one serving reads only "
        "and the other taking the payments and running the duties (default on)",
    )
    parser.add_argument(
        "--storm-roles",
        type=int,
        metavar="N",
        help="storm: N storms of the largest size with roles (probe on a `serve --no-duties`, "
        "payments to another, one `worker`), the probe pooled over them (default 3; quick 1)",
    )
    parser.add_argument(
        "--storm-accounts",
        type=int,
        default=3,
        metavar="N",
        help="storm: one storm of N x the largest size over N DO accounts of the fake, each "
        "with its own 250/min (default 3; 1 leaves it out)",
    )
    parser.add_argument(
        "--storm-kill-after",
        type=float,
        metavar="SECONDS",
        help="storm: one more run of the largest size with the most processes, SIGKILLing one "
        "of them this long after the payments were sent (once all are answered)",
    )
    parser.add_argument(
        "--placement-default-pair",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="placement: one more pair, reported only, at the default budget of 225 a minute "
        "per account (10 accounts: 10x the budget) (default on)",
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


def _save(name: str, payload: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=1, default=str) + "\n")
    log(f"wrote {path.relative_to(REPO)}")
    return path


def _command() -> str:
    return " ".join(["python -m bench", *(shlex.quote(a) for a in sys.argv[1:])])


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
        ["api", "storm", "placement", "memory", "webhooks", "lifecycle"]
        if args.phase == "all"
        else [args.phase]
    )
    # Payable orders: enough for every payment run at the fastest rate seen here, x3.
    payable = 0
    if {"api", "compare", "profile"} & set(phases) and "pay" in args.endpoints:
        payable = int(700 * (args.duration + 1) * 2 * args.reps * 3 * 1.3) + 3000
    if "placement" in phases:
        # One payment run per setting and repetition (+ the default pair), each with a warm-up.
        runs = placement_runs(args.reps, args.placement_default_pair)
        payable += int(700 * (args.duration + 1) * runs * 1.3) + 1000
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
            elif phase == "placement":
                result = phase_placement(args, setup)
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
