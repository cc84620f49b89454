"""Issue 20: the cost of placement — payments/s with 1 and with 10 DO accounts.

A payment (`payment-status` PAID) creates a provisioning task; the duties of the same
`order-service serve` process then place it (`accounts/placement.py`: the active
accounts locked FOR UPDATE, their slots counted, the least share used chosen) and
create its droplet on the fake DO. With more accounts placement locks and counts
more rows; this phase measures what that costs the payments.

`DIGITALOCEAN_RATE_PER_MINUTE` is a budget per account, so 10 accounts at the default
would let the duties make 10x the DO requests during a run: more DO work, a different
cost. Both settings therefore get the same total budget: 1 account at 220 a minute,
10 accounts at 22 each. That does not make their DO work equal (every create's look-up
lists all usable accounts, disabled ones too, each on its own budget), so each run
records the fake's creates and listings, and the tasks placed per account. One
reported-only pair runs at the default 225 per account, where 10 accounts have 10x
the budget.

The shape is bench/api.py's: one fake DO with 10 tokens (each its own account), one
`serve` (duties on), accounts 2..10 registered once through the API. For every
repetition, in an order flipped each repetition, each setting gets: the previous
runs' tasks retired and their droplets forgotten (`seed.forget_droplets`), the fake
reset (empty accounts, fresh rate windows), the shared budget reset, the service
restarted with the setting's budget, the setting's accounts enabled and the others
disabled (PATCH isActive), a warm-up, then one wrk `pay` run at 16 clients. Reported:
the median payments/s with min-max, and 10 / 1 as the median (and min-max) of the
per-repetition ratios. "Within the noise" (the goal): the 10-account median is not
below the slowest 1-account run, or the median ratio is >= 0.95
(`report_placement.within_noise`).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bench import api, load, seed, stack
from bench.infra import INTERNAL_API_KEY, Proc, log, stopping
from bench.prepare import Setup
from bench.report_placement import RATIO_FLOOR, within_noise
from bench.storm import _fake_stats, reset_shared_budget
from bench.storm_setup import fake_tokens, register_accounts

ACCOUNTS = 10
CONNECTIONS = 16
# The total DO budget a minute, the same in both measured settings.
TOTAL_PER_MINUTE = 220
DEFAULT_PER_MINUTE = 225  # the service's default, per account
ACCOUNTS_URL = "/api/v1/internal/do-accounts"
HEADERS = {"X-API-Key": INTERNAL_API_KEY}


@dataclass(frozen=True)
class Setting:
    name: str
    accounts: int
    per_minute: int  # DIGITALOCEAN_RATE_PER_MINUTE: per account


MEASURED = (
    Setting("1 account", 1, TOTAL_PER_MINUTE),
    Setting(f"{ACCOUNTS} accounts", ACCOUNTS, TOTAL_PER_MINUTE // ACCOUNTS),
)
# Reported only: the default budget per account (10 accounts: 10x the budget).
DEFAULT_PAIR = (
    Setting("1 account, default budget", 1, DEFAULT_PER_MINUTE),
    Setting(f"{ACCOUNTS} accounts, default budget", ACCOUNTS, DEFAULT_PER_MINUTE),
)


def runs_planned(reps: int, default_pair: bool) -> int:
    """Payment runs of the phase (without warm-ups), for Setup's payable orders."""
    return len(MEASURED) * reps + (len(DEFAULT_PAIR) if default_pair else 0)


# ------------------------------------------------------------------ the accounts


def set_active(service: Proc, count: int) -> list[str]:
    """`default` and the first count-1 added accounts active, the others not; the names."""
    with httpx.Client(base_url=service.url, headers=HEADERS, timeout=30) as client:
        answer = client.get(ACCOUNTS_URL, params={"limit": 100})
        answer.raise_for_status()
        accounts = sorted(answer.json()["data"], key=lambda a: (a["name"] != "default", a["name"]))
        wanted = {a["name"] for a in accounts[:count]}
        for account in accounts:
            active = account["name"] in wanted
            if account["isActive"] != active:
                reply = client.patch(f"{ACCOUNTS_URL}/{account['id']}", json={"isActive": active})
                reply.raise_for_status()
        missing = [a["name"] for a in accounts if a["name"] in wanted and a["dropletLimit"] is None]
        if missing:
            log(f"WARNING: placement: no droplet limit known yet for {missing}")
    return sorted(wanted)


async def _placements(since: Any) -> dict[str, int]:
    """Tasks created since `since` by the account they were placed in ("-": not yet)."""
    rows = await seed.execute(
        "SELECT coalesce(a.name, '-') AS account, count(*) AS tasks "
        "FROM provisioning_tasks t LEFT JOIN do_accounts a ON a.id = t.do_account_id "
        "WHERE t.created_at >= $1 GROUP BY 1 ORDER BY 1",
        since,
    )
    return {row["account"]: int(row["tasks"]) for row in rows}


async def _db_now() -> Any:
    return (await seed.execute("SELECT now() AS now"))[0]["now"]


# ------------------------------------------------------------------ one run


def _prepare(target: api.Target, fake: Proc, setting: Setting) -> list[str]:
    """A fresh start for the setting: nothing left of earlier runs, then the service."""
    target.down()
    seed.retire_unfinished_tasks()
    seed.forget_droplets()
    reset_shared_budget()
    httpx.post(fake.url + "/_fake/reset", timeout=10).raise_for_status()
    return set_active(target.up(), setting.accounts)


def _creates(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    accounts = {
        name: after["accounts"][name]["requests"]
        - before["accounts"].get(name, {}).get("requests", 0)
        for name in after["accounts"]
    }
    return {
        "creates": after["by_route"]["create"] - before["by_route"]["create"],
        "creates_since_reset": after["by_route"]["create"],
        "do_requests": after["requests"] - before["requests"],
        "rate_limited": after["rate_limited"] - before["rate_limited"],
        "do_requests_by_account": {k: v for k, v in accounts.items() if v},
        "do_requests_by_route": {
            k: v - before["by_route"].get(k, 0)
            for k, v in after["by_route"].items()
            if v - before["by_route"].get(k, 0)
        },
        "by_route_since_reset": {k: v for k, v in after["by_route"].items() if v},
    }


def one_setting(
    ctx: api.ApiContext,
    target: api.Target,
    fake: Proc,
    setting: Setting,
    *,
    rep: int,
    duration: float,
) -> dict[str, Any]:
    active = _prepare(target, fake, setting)
    api.warm(ctx, target, ("pay",))
    since = asyncio.run(_db_now())
    before = _fake_stats(fake)
    load_before = os.getloadavg()[0]
    entry = api.one_run(ctx, target, "pay", CONNECTIONS, duration, rep=rep)
    after = _fake_stats(fake)
    entry |= {
        "setting": setting.name,
        "accounts": setting.accounts,
        "active_accounts": active,
        "per_minute_per_account": setting.per_minute,
        "per_minute_total": setting.per_minute * setting.accounts,
        "placements": asyncio.run(_placements(since)),
        "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        **_creates(before, after),
    }
    placed = {k: v for k, v in entry["placements"].items() if k != "-"}
    log(
        f"placement {setting.name:28} rep {rep}: {entry['rps']:7.1f} payments/s, "
        f"{entry['creates']} creates, placed in {len(placed)} account(s) "
        f"({sum(placed.values())} of {sum(entry['placements'].values())} tasks), "
        f"load {entry['loadavg_1m']}"
    )
    return entry


# ------------------------------------------------------------------ the phase


def run_placement(
    setup: Setup, *, reps: int, duration: float, default_pair: bool
) -> dict[str, Any]:
    ctx = setup.api_context()
    # Accounts an earlier phase added would not exist in this fake: start with `default`.
    seed.drop_extra_accounts()
    fake = stack.start_fake_do(setup.dir, boot_seconds=2.0, tokens=fake_tokens(ACCOUNTS))
    env = stack.service_env(setup.catalog, fake)
    current = {"per_minute": TOTAL_PER_MINUTE}

    def starter() -> Proc:
        rate = {"DIGITALOCEAN_RATE_PER_MINUTE": str(current["per_minute"])}
        return stack.start_service(setup.dir, env | rate, name="placement")

    target = api.Target("placement", "ours", starter, endpoints=("pay",))
    runs: list[dict[str, Any]] = []
    reported: list[dict[str, Any]] = []
    started = time.monotonic()
    with stopping(fake):
        try:
            register_accounts(target.up(), fake_tokens(ACCOUNTS), prefix="bench")
            log(f"placement: {ACCOUNTS - 1} accounts added beside default")
            plan = [
                (setting, rep, runs)
                for rep in range(reps)
                for setting in (MEASURED if rep % 2 == 0 else tuple(reversed(MEASURED)))
            ]
            plan += [(setting, 0, reported) for setting in DEFAULT_PAIR if default_pair]
            for setting, rep, into in plan:
                current["per_minute"] = setting.per_minute
                target.name = setting.name
                into.append(one_setting(ctx, target, fake, setting, rep=rep, duration=duration))
            seed.retire_unfinished_tasks()
        finally:
            target.down()
            # The phases after this one run with a fake DO of one token.
            seed.forget_droplets()
            seed.drop_extra_accounts()
    return {
        "config": {
            "duration_s": duration,
            "reps": reps,
            "connections": CONNECTIONS,
            "accounts": ACCOUNTS,
            "settings": [s.__dict__ for s in MEASURED],
            "default_pair": [s.__dict__ for s in DEFAULT_PAIR] if default_pair else [],
            "tool": load.ensure_wrk(),
            "payable_used": ctx.pay_cursor,
            "seconds": round(time.monotonic() - started, 1),
        },
        "runs": runs,
        "reported_only": reported,
        "summary": summarize(runs, reported),
    }


# ------------------------------------------------------------------ summary


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
    }


def _totals(runs: list[dict[str, Any]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for run in runs:
        for account, tasks in run["placements"].items():
            totals[account] = totals.get(account, 0) + tasks
    return dict(sorted(totals.items()))


def _per_setting(runs: list[dict[str, Any]], setting: Setting) -> dict[str, Any]:
    mine = [r for r in runs if r["setting"] == setting.name]
    return {
        "setting": setting.name,
        "accounts": setting.accounts,
        "per_minute_per_account": setting.per_minute,
        "reps": len(mine),
        "payments_per_s": _spread([r["rps"] for r in mine]),
        "p99_ms": round(statistics.median(r["p99_ms"] for r in mine), 1),
        "errors": sum(r["errors"] for r in mine),
        "creates_per_run": [r["creates"] for r in mine],
        "lists_per_run": [r["do_requests_by_route"].get("list", 0) for r in mine],
        "do_requests_per_run": [r["do_requests"] for r in mine],
        "rate_limited": sum(r["rate_limited"] for r in mine),
        "placements_per_account": _totals(mine),
    }


def summarize(runs: list[dict[str, Any]], reported: list[dict[str, Any]]) -> dict[str, Any]:
    one, ten = (_per_setting(runs, s) for s in MEASURED)
    by_rep = {(r["setting"], r["rep"]): r["rps"] for r in runs}
    ratios = [
        by_rep[(MEASURED[1].name, rep)] / by_rep[(MEASURED[0].name, rep)]
        for rep in sorted({r["rep"] for r in runs})
        if (MEASURED[0].name, rep) in by_rep and (MEASURED[1].name, rep) in by_rep
    ]
    summary: dict[str, Any] = {
        "one": one,
        "ten": ten,
        "ratio": {
            "median": round(statistics.median(ratios), 3) if ratios else None,
            "min": round(min(ratios), 3) if ratios else None,
            "max": round(max(ratios), 3) if ratios else None,
            "per_rep": [round(r, 3) for r in ratios],
        },
        "rule": (
            f"met when the {ACCOUNTS}-account median payments/s is not below the slowest "
            f"1-account run, or the median ratio {ACCOUNTS}/1 is >= {RATIO_FLOOR}"
        ),
    }
    summary["within_noise"] = within_noise(summary)
    loads = [x for r in runs + reported for x in r.get("loadavg_1m", [])]
    # The machine's 1-minute load average around the runs (other work shares the machine).
    summary["loadavg_1m"] = [min(loads), max(loads)] if loads else None
    if reported:
        pair = {r["setting"]: r for r in reported}
        a, b = (pair.get(s.name) for s in DEFAULT_PAIR)
        summary["default_pair"] = [
            {
                "setting": r["setting"],
                "payments_per_s": r["rps"],
                "creates": r["creates"],
                "lists": r["do_requests_by_route"].get("list", 0),
                "do_requests": r["do_requests"],
                "placements_per_account": r["placements"],
            }
            for r in reported
        ]
        if a and b and a["rps"]:
            summary["default_pair_ratio"] = round(b["rps"] / a["rps"], 3)
    return summary
