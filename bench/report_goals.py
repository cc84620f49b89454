"""docs/benchmarks.md: every goal the issues set, against this run's results.

Each row says the goal, the issue it comes from, what this run measured and
whether that meets it; a phase that did not run leaves its goals "not
measured". The figures come from the same results as the tables above them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.report_format import num, pct
from bench.report_placement import placement_goal
from bench.report_sections import WEBHOOK_RATIO_GOAL, worst_lifecycle_ratio
from bench.storm_result import pooled_probe, roles_storms

Results = dict[str, dict[str, Any] | None]
# What a goal says about one run: (what was measured, met or not).
Verdict = tuple[str, bool]


def _api_row(
    api: dict[str, Any], endpoint: str, connections: int, target: str = "ours"
) -> dict[str, Any] | None:
    return next(
        (
            r
            for r in api["summary"]
            if (r["target"], r["endpoint"], r["connections"]) == (target, endpoint, connections)
        ),
        None,
    )


def _paid_api_only(api: dict[str, Any]) -> Verdict | None:
    """Issue 23: PAID at 16 clients on `serve --no-duties` (a worker beside it)."""
    row = _api_row(api, "pay", 16, "ours-api-only")
    if row is None or row["ratio"] is None:
        return None
    text = f"{pct(row['ratio'])} ({pct(row['ratio_min'])}-{pct(row['ratio_max'])})"
    return text, row["ratio"] >= 0.5


def _detail_p99_at_64(api: dict[str, Any]) -> Verdict | None:
    """Issue 23: the slowest reads, not the typical one; medians of p99 over the runs."""
    ours = _api_row(api, "detail", 64)
    ceiling = _api_row(api, "detail", 64, "ceiling")
    if ours is None or ceiling is None or not ceiling["p99_ms"]:
        return None
    ratio = ours["p99_ms"] / ceiling["p99_ms"]
    text = (
        f"{num(ours['p99_ms'], 1)} ms vs ceiling {num(ceiling['p99_ms'], 1)} ms "
        f"({ratio:.1f}x; p50 {num(ours['p50_ms'], 1)} vs {num(ceiling['p50_ms'], 1)} ms)"
    )
    return text, ratio <= 2


def _ratios(api: dict[str, Any], endpoints: tuple[str, ...], floor: float) -> Verdict | None:
    rows = [
        (endpoint, conns, row)
        for endpoint in endpoints
        for conns in api["config"]["connections"]
        if (row := _api_row(api, endpoint, conns)) is not None
    ]
    if not rows:
        return None
    text = ", ".join(f"{e} at {c}: {pct(row['ratio'])}" for e, c, row in rows)
    return text, all(row["ratio"] >= floor for _, _, row in rows)


def _detail_at_16(api: dict[str, Any]) -> Verdict | None:
    row = _api_row(api, "detail", 16)
    return None if row is None else (pct(row["ratio"]), row["ratio"] >= 0.5)


def _read_p99(api: dict[str, Any]) -> Verdict | None:
    rows = [(e, r) for e in ("detail", "list") if (r := _api_row(api, e, 16)) is not None]
    if not rows:
        return None
    ceiling = {
        r["endpoint"]: r["p99_ms"]
        for r in api["summary"]
        if r["target"] == "ceiling" and r["connections"] == 16
    }
    text = ", ".join(
        f"{e} {num(r['p99_ms'], 1)} ms (ceiling {num(ceiling.get(e), 1)} ms)" for e, r in rows
    )
    return text, all(r["p99_ms"] < 50 for _, r in rows)


def _storm_name(storm: dict[str, Any]) -> str:
    kind = " split" if storm.get("split") else " (one SIGKILLed)" if storm.get("kill") else ""
    kind += " roles" if storm.get("roles") else ""
    kind += f" over {storm['accounts']} accounts" if storm.get("accounts", 1) > 1 else ""
    return f"{storm['orders']} x {storm.get('processes', 1)}{kind}"


def _plain_storm(storm_result: dict[str, Any], orders: int = 500) -> dict[str, Any] | None:
    """Issue 23's storm: `orders` paid at once, one process (duties in it), one account."""
    return next(
        (
            s
            for s in storm_result["storms"]
            if s["orders"] == orders
            and s.get("processes", 1) == 1
            and s.get("accounts", 1) == 1
            and not s.get("split")
            and not s.get("roles")
        ),
        None,
    )


def _paid_to_active(storm_result: dict[str, Any]) -> Verdict | None:
    """Issue 23: mean PAID -> ACTIVE <= 1.15x the per-order bounds' mean, last <= 1.1x."""
    storm = _plain_storm(storm_result)
    figures = storm.get("paid_to_active") if storm else None
    if storm is None or not figures or not figures.get("orders"):
        return None
    text = (
        f"mean {figures['mean_s']:.1f} s vs {figures['bound_mean_s']:.1f} s "
        f"(**{figures['mean_vs_bound']:.2f}x**), last {figures['max_s']:.1f} s vs "
        f"{figures['bound_max_s']:.0f} s ({figures['last_vs_bound']:.2f}x), "
        f"429s {storm['rate_limited_429']}"
    )
    met = (
        figures["mean_vs_bound"] <= 1.15
        and figures["last_vs_bound"] <= 1.1
        and storm["rate_limited_429"] == 0
    )
    return text, met


def _requests_per_droplet(storm_result: dict[str, Any]) -> Verdict | None:
    storm = _plain_storm(storm_result)
    if storm is None:
        return None
    return f"{storm['do_requests_per_droplet']:.2f}", storm["do_requests_per_droplet"] <= 1.05


def _roles_probe(storm_result: dict[str, Any]) -> Verdict | None:
    """Issue 23: the probe on an API-only process, pooled over the roles storms of one
    account (the storm over several accounts has its own row)."""
    pooled = pooled_probe(roles_storms(storm_result["storms"]))
    if pooled is None:
        return None
    text = (
        f"p95 {pooled['idle_p95_ms']:.1f} -> {pooled['storm_p95_ms']:.1f} ms "
        f"(**{pooled['p95_storm_vs_idle']:.2f}x**), p99 {pooled['idle_p99_ms']:.1f} -> "
        f"{pooled['storm_p99_ms']:.1f} ms ({pooled['p99_storm_vs_idle']:.2f}x); "
        f"{pooled['storms']} storms, {pooled['storm_requests']:,} probes"
    )
    return text, pooled["p95_storm_vs_idle"] < 2


def _accounts_storm(storm_result: dict[str, Any]) -> Verdict | None:
    """Issue 20: the storm over several accounts against their lower bound. Judged on
    the roles run when there is one (API-only processes and a worker: how v1.2 deploys
    a storm of this size); the one-process run is shown beside it."""
    runs = [s for s in storm_result["storms"] if s.get("accounts", 1) > 1]
    if not runs:
        return None
    judged = [s for s in runs if s.get("roles")] or runs
    text = "; ".join(
        f"{_storm_name(s)}: {s['seconds_to_all_active']:.1f} s vs "
        f"{s['lower_bound']['our_budget_s']:.0f} s (**{s['vs_budget_bound']:.2f}x**), "
        f"{s['active']} ACTIVE"
        for s in runs
    )
    return text, all(s["all_active"] and s["vs_budget_bound"] <= 1.1 for s in judged)


def _per_storm(
    key: Callable[[dict[str, Any]], Any], ok: Callable[[Any], bool], unit: str = ""
) -> Callable[[dict[str, Any]], Verdict]:
    """A goal every storm of the run must meet; each storm's figure is shown."""

    def judge(storm_result: dict[str, Any]) -> Verdict:
        storms = storm_result["storms"]
        values = [(s, key(s)) for s in storms]
        text = "; ".join(f"{_storm_name(s)}: {v}{unit}" for s, v in values)
        return text, all(ok(v) for _, v in values)

    return judge


def _three_like_one(storm_result: dict[str, Any]) -> Verdict | None:
    runs = [
        s
        for s in storm_result["storms"]
        if s["orders"] == 500 and not s.get("split") and not s.get("kill")
    ]
    if not runs:
        return None
    text = "; ".join(f"{_storm_name(s)}: {s['vs_budget_bound']:.2f}x" for s in runs)
    return text, all(s["vs_budget_bound"] <= 1.1 for s in runs)


def _memory(memory: dict[str, Any]) -> Verdict | None:
    followed = memory.get("followed")
    if not followed:
        return None
    growth = followed["growth_mib"]
    text = f"{growth:+.1f} MiB for {followed['droplets_followed']:,} droplets in flight"
    return text, growth < 50


def _delivered(webhooks: dict[str, Any]) -> Verdict:
    storm = webhooks["storm"]
    return f"{storm['delivered']:,} of {storm['events']:,} events", storm["all_delivered"]


def _dead_endpoint(webhooks: dict[str, Any]) -> Verdict | None:
    ratio = webhooks["dead_endpoint"]["summary"]["ratio"]
    return None if ratio is None else (f"{ratio:.2f}x", ratio <= WEBHOOK_RATIO_GOAL)


def _scan_cost(lifecycle: dict[str, Any]) -> Verdict | None:
    if not lifecycle.get("ratios"):
        return None
    worst = worst_lifecycle_ratio(lifecycle)
    return f"at most {worst}x", worst <= lifecycle.get("goal_ratio", 1.5)


def _drain(lifecycle: dict[str, Any]) -> Verdict | None:
    drain = lifecycle.get("drain")
    if not drain:
        return None
    d = drain["summary"]
    return (
        f"database half {d['db_over_do_rate']}x faster than the DO half "
        f"({d['droplets_off_per_min']} droplets off per minute)",
        d["db_over_do_rate"] > 1,
    )


# (goal, where it comes from, the phase's result, how this run is judged)
GOALS: tuple[tuple[str, str, str, Callable[[dict[str, Any]], Verdict | None]], ...] = (
    (
        "GET order detail >= 50% of the ceiling at 16 clients, one process",
        "issue 11",
        "api",
        _detail_at_16,
    ),
    (
        "reads (detail, list) >= 50% of the ceiling",
        "issue 5",
        "api",
        lambda api: _ratios(api, ("detail", "list"), 0.5),
    ),
    ("POST order >= 40% of the ceiling", "issue 5", "api", lambda a: _ratios(a, ("create",), 0.4)),
    ("reads' p99 < 50 ms at 16 clients", "issues 5, 11 (the list)", "api", _read_p99),
    (
        "PAID on an API-only process (`serve --no-duties`, a worker beside it) >= 50% of "
        "the ceiling at 16 clients",
        "issue 23",
        "api",
        _paid_api_only,
    ),
    (
        "GET order detail at 64 clients: p99 within 2x the ceiling's p99",
        "issue 23",
        "api",
        _detail_p99_at_64,
    ),
    (
        "DO requests per droplet <= 3",
        "issue 5",
        "storm",
        _per_storm(lambda s: s["do_requests_per_droplet"], lambda v: v <= 3),
    ),
    (
        "no 429 served by DO",
        "issues 5, 11",
        "storm",
        _per_storm(lambda s: s["rate_limited_429"], lambda v: v == 0),
    ),
    (
        "the fake's busiest rolling minute <= 250 requests, per account (token)",
        "issues 11, 20",
        "storm",
        _per_storm(
            lambda s: (
                s.get("max_busiest_minute_per_account")
                or (s.get("busiest_minute") or {}).get("requests")
            ),
            lambda v: v is not None and v <= 250,
        ),
    ),
    (
        "1,500 orders over 3 accounts all ACTIVE within 1.1x the 3-account lower bound",
        "issue 20",
        "storm",
        _accounts_storm,
    ),
    (
        "500 orders, one account: mean PAID -> ACTIVE <= 1.15x the per-order bound's mean, "
        "the last <= 1.1x its bound, 0 x 429",
        "issue 23",
        "storm",
        _paid_to_active,
    ),
    ("DO requests per droplet <= 1.05 in that storm", "issue 23", "storm", _requests_per_droplet),
    (
        "reads with roles: probe p95 during the storm < 2x idle, pooled over 3 storms of 500",
        "issue 23",
        "storm",
        _roles_probe,
    ),
    (
        "500 orders all ACTIVE within 1.1x the budget's lower bound, three processes like one",
        "issue 11",
        "storm",
        _three_like_one,
    ),
    (
        "one droplet per order",
        "SPEC §7",
        "storm",
        _per_storm(lambda s: s["max_droplets_per_order"], lambda v: v == 1),
    ),
    (
        "probe GET p99 during the storm < 2x idle",
        "issues 5, 11",
        "storm",
        _per_storm(lambda s: s["p99_storm_vs_idle"], lambda v: v is not None and v < 2, "x"),
    ),
    (
        "placement over 10 accounts costs payments/s within the noise of 1 account",
        "issue 20",
        "placement",
        placement_goal,
    ),
    ("RSS growth < 50 MB with 1,000 droplets in flight", "issue 5", "memory", _memory),
    ("every event of the paid orders delivered", "issue 10", "webhooks", _delivered),
    (
        f"GET p99 with a dead webhook endpoint <= {WEBHOOK_RATIO_GOAL}x none",
        "issue 10",
        "webhooks",
        _dead_endpoint,
    ),
    ("a scan at 100,000 orders <= 1.5x one at 10,000", "issue 9", "lifecycle", _scan_cost),
    (
        "a backlog of suspensions drains at the DO budget's pace, not the database's",
        "issue 9",
        "lifecycle",
        _drain,
    ),
)


def goals_section(results: Results) -> list[str]:
    out = [
        "| goal | from | this run | |",
        "| --- | --- | --- | --- |",
    ]
    for goal, source, phase, judge in GOALS:
        result = results.get(phase)
        verdict = judge(result) if result else None
        if verdict is None:
            out.append(f"| {goal} | {source} | _not measured in this run_ | |")
            continue
        text, met = verdict
        out.append(f"| {goal} | {source} | {text} | {'met' if met else '**not met**'} |")
    return out
