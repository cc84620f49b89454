"""docs/benchmarks.md: the provisioning storm's and the memory phase's tables, and the picture."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.report_format import routes, times
from bench.storm_result import pooled_probe, roles_storms

STORM_PICTURE = "storm.png"  # next to the rendered doc


def storm_table(result: dict[str, Any], label: str = "") -> list[str]:
    out = [
        "| orders paid at once | processes | all ACTIVE after | lower bound: our budget "
        "225/min | lower bound: DO 250/min | DO requests / droplet | 429s | busiest rolling "
        "minute (goal <= 250) | droplets / order | PAID -> ACTIVE mean vs the per-order bound's "
        "| GET detail p99 idle -> storm (first 10 s) | x idle |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for storm in result["storms"]:
        bound = storm["lower_bound"]
        out.append(
            f"| {storm['orders']}{label} | {_processes(storm)} | "
            f"{storm['seconds_to_all_active']:.1f} s"
            f"{'' if storm['all_active'] else ' (NOT all: ' + str(storm['active']) + ')'} | "
            f"{bound['our_budget_s']:.0f} s (**{storm['vs_budget_bound']:.2f}x**) | "
            f"{bound['do_limit_s']:.0f} s ({storm['vs_do_bound']:.2f}x) | "
            f"{storm['do_requests_per_droplet']:.2f} ({storm['do_requests']}: "
            f"{routes(storm['do_requests_by_route'])}) | **{storm['rate_limited_429']}** | "
            f"{_busiest(storm)} | {storm['max_droplets_per_order']} | {_per_order(storm)} | "
            f"{storm['probe_idle']['p99_ms']:.1f} -> "
            f"{storm['probe_storm']['p99_ms']:.1f} ms ({storm['probe_first_10s']['p99_ms']:.1f}) | "
            f"**{times(storm['p99_storm_vs_idle'])}** "
            f"({times(storm['p99_first_10s_vs_idle'])}) |"
        )
    first = result["storms"][0]
    out += [
        "",
        f"Fake DigitalOcean: {first['boot_s']:g} s boot, 250 requests/min and 5,000/h per token "
        f"(429 past them); service: `order-service serve` processes on one database (the "
        "processes column), each with `PROVISIONING_POLL_INTERVAL_MS="
        f"{first['poll_interval_ms']}`, `PROVISIONING_MAX_ATTEMPTS={first.get('max_attempts', 60)}`"
        " (the default 300 s deadline) and the default rate budget (225/min). The orders exist "
        "before; the clock starts when the harness sends all payments at once (100 connections "
        "in all, spread round-robin over the processes). The probe is an open-loop GET order "
        f"detail at {first['probe_rate_per_s']:g} req/s to the first process, from its own "
        "process, 6 s idle right before the storm, then until every order is ACTIVE. A SIGKILLed "
        "process is the last one, killed once every payment was answered. In a split storm the "
        "probed process serves reads only (`PROVISIONING_ENABLED=false`, `LIFECYCLE_ENABLED="
        "false`, no payments sent to it) and the other takes every payment and runs the duties, "
        'as docs/operations.md\'s "Reads during a storm" deploys it. The busiest rolling '
        "minute is the most requests the fake counted (429s included) between two samples of its "
        "counter at most 60 s apart (sampled every "
        f"{first.get('sample_interval_s', 0.25):g} s; in brackets the most any 60 s window can "
        "hold given the gaps between samples). Payments: "
        + "; ".join(
            f"{s['orders']} x {_processes(s)}: {s['payments']['ok']} ok, "
            f"{s['payments']['errors']} errors, all answered in {s['payments']['seconds']} s "
            f"(p99 {s['payments']['p99_ms']} ms)"
            for s in result["storms"]
        )
        + ".",
        *_roles_lines(result["storms"]),
        *_accounts_lines(result["storms"]),
    ]
    return out


def _per_order(storm: dict[str, Any]) -> str:
    figures = storm.get("paid_to_active") or {}
    if not figures.get("orders"):
        return "-"
    return (
        f"{figures['mean_s']:.1f} s vs {figures['bound_mean_s']:.1f} s "
        f"(**{figures['mean_vs_bound']:.2f}x**; p95 {figures['p95_s']:.0f} s)"
    )


def _roles_lines(storms: list[dict[str, Any]]) -> list[str]:
    roles = roles_storms(storms)
    pooled = pooled_probe(roles)
    if pooled is None:
        return []
    return [
        "",
        f"**Roles** (issue 23; {pooled['storms']} storms of {roles[0]['orders']}): the probe "
        "reads from a `serve --no-duties` process, the payments go to a second `serve "
        "--no-duties`, one `order-service worker` runs the duties. Probe pooled over the "
        f"storms: p95 {pooled['idle_p95_ms']:.1f} ms idle -> {pooled['storm_p95_ms']:.1f} ms "
        f"during the storms (**{pooled['p95_storm_vs_idle']:.2f}x**), p99 "
        f"{pooled['idle_p99_ms']:.1f} -> {pooled['storm_p99_ms']:.1f} ms "
        f"({pooled['p99_storm_vs_idle']:.2f}x), {pooled['idle_requests']:,} idle and "
        f"{pooled['storm_requests']:,} storm requests.",
    ]


def _accounts_lines(storms: list[dict[str, Any]]) -> list[str]:
    out = []
    for storm in (s for s in storms if s.get("accounts", 1) > 1):
        detail = storm.get("accounts_detail") or {}
        each = "; ".join(
            f"`{name}`: {a['droplets']} droplets, {a['requests']} requests, busiest minute "
            f"{_busiest({'busiest_minute': a.get('busiest_minute')})}, "
            f"{a['rate_limited_429']} x 429"
            for name, a in detail.items()
        )
        out += [
            "",
            f"**{storm['accounts']} DO accounts** (issue 20; {storm['orders']:,} orders): the fake "
            f"holds {storm['accounts']} tokens, each an account with its own droplets and "
            "250/min; the service has `default` plus the others added through "
            "`POST /api/v1/internal/do-accounts` before the storm. Its lower bound is one "
            "account's for a third of the orders. Per account (the fake's token): " + each + ".",
        ]
    return out


def _processes(storm: dict[str, Any]) -> str:
    if storm.get("split"):
        return f"{storm['processes']}, split: reads on the probed one"
    accounts = f", {storm['accounts']} DO accounts" if storm.get("accounts", 1) > 1 else ""
    if storm.get("roles"):
        return f"{storm['processes']} `serve --no-duties` + 1 `worker` (roles){accounts}"
    if accounts:
        return f"{storm.get('processes', 1)}{accounts}"
    text = str(storm.get("processes", 1))
    kill = storm.get("kill")
    return text + (f" (one SIGKILLed at {kill['at_s']:.0f} s)" if kill else "")


def _busiest(storm: dict[str, Any]) -> str:
    busiest = storm.get("busiest_minute")
    if not busiest:
        return "-"
    if storm.get("accounts", 1) > 1:
        return (
            f"**{storm['max_busiest_minute_per_account']}** "
            f"({storm['max_busiest_minute_upper_per_account']}) in the busiest account; "
            f"{busiest['requests']} in all"
        )
    return f"**{busiest['requests']}** ({busiest['upper']})"


def storm_picture(result: dict[str, Any], doc: Path) -> list[str]:
    """docs/storm.png, drawn from the same results (needs the `bench` extra's matplotlib)."""
    from bench.plot import draw_storms

    picture = draw_storms(result["storms"], doc.parent / STORM_PICTURE)
    if picture is None:
        return []
    return [
        "",
        f"![The largest one-account storm over time: orders ACTIVE against the budget's lower "
        f"bound, each order's PAID -> ACTIVE, DO requests per rolling minute, probe p99 per "
        f"5 s]({STORM_PICTURE})",
        "",
        f"[`docs/{STORM_PICTURE}`]({STORM_PICTURE}): the largest one-account storm of the run, "
        "with each process count (and the first roles storm), on one time axis. Top: orders "
        "ACTIVE against the staircase of our budget's lower bound. Second: each order's PAID -> "
        "ACTIVE, sorted, against the per-order bound (order i cannot be created before budget "
        "window floor(i / 225), then boots; issue 23). Third: DO requests in the 60 s before "
        "each sample (x: samples where the fake answered 429s). Bottom: the probe's GET p99 "
        "per 5 s (log scale), the dotted lines at 2x each run's idle p99.",
    ]


def memory_table(result: dict[str, Any], label: str = "", header: bool = True) -> list[str]:
    out = (
        [
            "| scenario | idle RSS | RSS in flight | growth | what was in flight |",
            "| --- | ---: | ---: | ---: | --- |",
        ]
        if header
        else []
    )
    followed = result.get("followed")
    if followed:
        requests = routes(followed["do_requests_while_following"])
        out.append(
            f"| A. {followed['droplets_followed']:,} droplets in flight, followed{label} | "
            f"{followed['idle']['median_mib']:.1f} MiB | "
            f"{followed['in_flight']['max_mib']:.1f} MiB | "
            f"**{followed['growth_mib']:+.1f} MiB** | "
            f"{int(followed['workers_in_flight']):,} workers "
            f"(gauge), every droplet `new` (600 s boot) and polled; DO requests meanwhile: "
            f"{requests} |"
        )
    paid = result.get("paid_at_once")
    if paid:
        out.append(
            f"| B. 1,000 orders paid at once via the API | {paid['idle']['median_mib']:.1f} MiB | "
            f"{paid['in_flight']['max_mib']:.1f} MiB | **{paid['growth_mib']:+.1f} MiB** | "
            f"{int(paid['workers_in_flight']):,} workers; {paid['droplets_created']} droplets "
            "created (rate budget), the rest waiting for budget |"
        )
    return out
