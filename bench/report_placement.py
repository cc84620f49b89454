"""docs/benchmarks.md: the cost of placement (issue 20), its table and its goal's rule.

"Within the noise": payments/s with 10 accounts is judged met when the 10-account
median is not below the slowest 1-account run (it falls within the spread of the
1-account repetitions), or when the median of the per-repetition ratios 10 / 1 is
at least RATIO_FLOOR.
"""

from __future__ import annotations

from typing import Any

from bench.report_format import num

RATIO_FLOOR = 0.95


def within_noise(summary: dict[str, Any]) -> bool | None:
    """The goal's rule on a placement summary; None when either setting was not measured."""
    one = (summary.get("one") or {}).get("payments_per_s")
    ten = (summary.get("ten") or {}).get("payments_per_s")
    if not one or not ten:
        return None
    if (summary.get("one") or {}).get("errors") or (summary.get("ten") or {}).get("errors"):
        return False  # failed payments (e.g. orders paid twice) measure nothing
    ratio = (summary.get("ratio") or {}).get("median")
    return ten["median"] >= one["min"] or (ratio is not None and ratio >= RATIO_FLOOR)


def _rate(spread: dict[str, float]) -> str:
    return f"**{num(spread['median'], 1)}** ({num(spread['min'], 1)}-{num(spread['max'], 1)})"


def placement_goal(result: dict[str, Any]) -> tuple[str, bool] | None:
    summary = result.get("summary") or {}
    met = within_noise(summary)
    if met is None:
        return None
    one, ten, ratio = summary["one"], summary["ten"], summary["ratio"]
    text = (
        f"{num(ten['payments_per_s']['median'], 1)} vs {num(one['payments_per_s']['median'], 1)}"
        f" payments/s (1 account {num(one['payments_per_s']['min'], 1)}-"
        f"{num(one['payments_per_s']['max'], 1)}); 10/1 {ratio['median']}x "
        f"({ratio['min']}-{ratio['max']})"
    )
    errors = one.get("errors", 0) + ten.get("errors", 0)
    if errors:
        text += f"; **{errors} payments failed**"
    return text, met


def _accounts(placements: dict[str, int]) -> str:
    placed = {k: v for k, v in placements.items() if k != "-"}
    waiting = placements.get("-", 0)
    text = ", ".join(f"{k} {v}" for k, v in placed.items()) or "none"
    return f"{len(placed)}: {text}" + (f" (+{waiting} not yet placed)" if waiting else "")


def placement_section(result: dict[str, Any] | None) -> list[str]:
    if not result:
        return ["_not measured in this run_ (`python -m bench placement`)"]
    facts, config, summary = result.get("machine", {}), result["config"], result["summary"]
    quick = " — **quick mode** (a smoke test, not the figures)" if result.get("quick") else ""
    out = [
        f"Produced by `{facts.get('command', 'python -m bench placement')}` "
        f"({facts.get('date_utc')}, commit `{facts.get('git_commit')}`, "
        f"{result.get('phase_seconds', 0):.0f} s){quick}.",
        "",
        "Goal (issue 20): payments/s with 10 DO accounts within the noise of 1 account — met "
        "when the 10-account median is not below the slowest 1-account run, or the median of "
        f"the per-repetition ratios 10/1 is ≥ {RATIO_FLOOR}.",
        "",
        "| setting | budget a minute | reps | payments/s median (min-max) | p99 | creates per "
        "run (fake DO) | listings per run | DO requests per run | 429s | tasks placed, by account "
        "|",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in (summary["one"], summary["ten"]):
        budget = row["per_minute_per_account"]
        out.append(
            f"| {row['setting']} | {budget} x {row['accounts']} = {budget * row['accounts']} | "
            f"{row['reps']} | {_rate(row['payments_per_s'])} | {num(row['p99_ms'], 1)} ms | "
            f"{', '.join(map(str, row['creates_per_run']))} | "
            f"{', '.join(map(str, row.get('lists_per_run', [])))} | "
            f"{', '.join(map(str, row['do_requests_per_run']))} | {row['rate_limited']} | "
            f"{_accounts(row['placements_per_account'])} |"
        )
    ratio = summary["ratio"]
    verdict = "within the noise" if summary.get("within_noise") else "**not within the noise**"
    load = summary.get("loadavg_1m")
    load_note = f" Load average (1 min) around the runs: {load[0]}-{load[1]}." if load else ""
    out += [
        "",
        f"10 / 1: **{ratio['median']}x** (per repetition {', '.join(map(str, ratio['per_rep']))})"
        f" — {verdict}.{load_note}",
        "",
        f"One `order-service serve` (duties on) against one fake DO with {config['accounts']} "
        "tokens, each its own account; accounts 2..10 added once through the API, each "
        "setting's accounts enabled and the others disabled (`PATCH isActive`). Both "
        "settings get the same total DO budget (`DIGITALOCEAN_RATE_PER_MINUTE` is per "
        "account), so that 10 accounts do not buy 10x the DO work. It does not make the DO "
        "work equal: before every create the service lists the order's tag in every usable "
        "account, disabled ones included, each on its own budget (so the 1-account setting's "
        "look-ups in its 9 disabled accounts draw on 220 a minute each), and a budget of 22 "
        "a minute is paced in 1-token grants; the creates and listings columns say what each "
        "run did; what stays comparable is the tasks placed (database work, not DO work). Before "
        "every run: earlier tasks retired and their droplets forgotten, the fake reset, the "
        "shared budget reset, the service restarted with the setting's budget, a 1 s warm-up;"
        f" then wrk `pay` at {config['connections']} clients for {config['duration_s']} s, "
        "every order paid once, the settings' order flipped each repetition. Creates and "
        "DO requests are the fake's during the measured run; tasks placed are the tasks "
        "created in the run, by the account they were in when it ended.",
    ]
    pair = summary.get("default_pair")
    if pair:
        out += [
            "",
            "Reported only, one pair at the default budget (225 a minute per account, so "
            "10 accounts have 10x the budget):",
            "",
            "| setting | payments/s | creates | listings | DO requests | tasks placed, by "
            "account |",
            "| --- | ---: | ---: | ---: | ---: | --- |",
        ]
        for row in pair:
            out.append(
                f"| {row['setting']} | {num(row['payments_per_s'], 1)} | {row['creates']} | "
                f"{row.get('lists', '-')} | {row['do_requests']} | "
                f"{_accounts(row['placements_per_account'])} |"
            )
        if summary.get("default_pair_ratio") is not None:
            out += ["", f"10 / 1 at the default budget: {summary['default_pair_ratio']}x."]
    return out
