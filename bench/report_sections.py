"""docs/benchmarks.md tables of the webhooks and lifecycle phases (called by bench/report.py)."""

from __future__ import annotations

from typing import Any

from bench.report_format import num

WEBHOOK_RATIO_GOAL = 1.2
# The lifecycle ratios (largest size over smallest) the goal of issue 9 judges.
JUDGED_RATIOS = (
    ("idle_scan_ms", "idle scan"),
    ("due_scan_s", "scan with due orders"),
    ("idle_rows_touched", "rows read per idle scan"),
    ("rows_touched", "rows read by the scan with due orders"),
)


def _command(result: dict[str, Any]) -> list[str]:
    facts = result.get("machine", {})
    quick = " — **quick mode** (a smoke test, not the figures)" if result.get("quick") else ""
    return [
        f"Produced by `{facts.get('command', 'python -m bench')}` ({facts.get('date_utc')}, "
        f"commit `{facts.get('git_commit')}`, {result.get('phase_seconds', 0):.0f} s){quick}.",
        "",
    ]


def webhooks_section(result: dict[str, Any] | None) -> list[str]:
    if not result:
        return ["_not measured in this run_ (`python -m bench webhooks`)"]
    storm, dead = result["storm"], result["dead_endpoint"]
    out = _command(result)
    out += [
        "Goals (issue 10): every event of the paid orders delivered at least once; report "
        f"deliveries/s and event-to-delivery latency; API p99 with a dead endpoint registered "
        f"≤ {WEBHOOK_RATIO_GOAL}x the p99 with none.",
        "",
        "| orders paid at once | events in the feed | delivered | duplicates | last delivered "
        "after | deliveries/s | latency p50 / p99 / max | CPU service / sink |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    cpu = storm.get("cpu_pct", {})
    verdict = "all" if storm["all_delivered"] else f"**{storm['missing']} missing**"
    out.append(
        f"| {storm['orders']:,} | {storm['events']:,} | {storm['delivered']:,} ({verdict}) | "
        f"{storm['duplicates']} | {storm['seconds_to_last']} s | "
        f"**{num(storm['deliveries_per_s'], 1)}** | {num(storm['latency_p50_ms'])} / "
        f"**{num(storm['latency_p99_ms'])}** / {num(storm['latency_max_ms'])} ms | "
        f"{num(cpu.get('service'))}% / {num(cpu.get('sink'))}% |"
    )
    types = ", ".join(f"{k} {v}" for k, v in sorted(storm["by_type"].items()))
    pay = storm["payments"]
    out += [
        "",
        f"One `order-service serve` process with provisioning off (each payment writes "
        f'{types or "no events"}), ONE endpoint registered for `["*"]`: `bench/webhook_sink.py` '
        "in its own process on loopback, verifying each signature with `standardwebhooks` "
        f"({storm['rejected_signatures']} rejected) and answering 204 at once. The clock starts "
        f"when all payments are sent (100 connections; {pay.get('ok', 0)} answered 200, "
        f"{pay.get('errors', 0)} errors); the run ends when no event is unstamped and no "
        "delivery pending; then the whole feed (`GET /api/v1/internal/events`, paged with "
        "`after = meta.next`) is checked against the sink: every event id of these orders must "
        "have arrived. Latency = the event's first arrival at the sink - its `createdAt` (one "
        "machine, one clock); deliveries/s = events delivered / time from the payments to the "
        "last first arrival.",
        "",
    ]
    summary = dead["summary"]
    ratio = summary["ratio"]
    met = "" if ratio is None else (" (goal met)" if ratio <= WEBHOOK_RATIO_GOAL else " (over)")
    out += [
        f"**Dead endpoint**: GET order detail p99 with a hanging endpoint registered "
        f"{num(summary['dead_p99_ms'], 1)} ms vs none {num(summary['none_p99_ms'], 1)} ms "
        f"(medians over {dead['reps']} repetition(s)): **{num(ratio, 2)}x**{met}; per "
        "repetition: " + (", ".join(f"{r}x" for r in summary["per_rep"]) or "-") + ".",
        "",
        "| repetition | endpoint | probe requests | p50 / p95 / p99 ms | probe errors | "
        "orders created / paid | deliveries at end: pending (in flight) / attempts made |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in dead["runs"]:
        probe, load, end = run["probe"], run["load"], run["deliveries_at_end"]
        out.append(
            f"| {run['rep']} | {run['setup']} | {probe['requests']} | {num(probe['p50_ms'], 1)} "
            f"/ {num(probe['p95_ms'], 1)} / {num(probe['p99_ms'], 1)} | {probe['errors']} | "
            f"{load.get('create 201', 0)} / {load.get('pay 200', 0)} | "
            f"{end.get('pending', 0)} ({end.get('in_flight', '-')}) / {end.get('attempts', '-')} |"
        )
    out += [
        "",
        f"Each run: a fresh service process (provisioning off), no endpoint or delivery left "
        f"from the run before; the open-loop probe (`bench/probe.py`, "
        f"{num(dead['probe_rate_per_s'])} req/s, own process) over {dead['seconds']:g} s while "
        f"orders are created (as a user) and paid (ops) at {dead['load_rate_per_s']:g} a second, "
        "three events each. 'dead' = one endpoint for `[\"*\"]` that accepts connections and "
        "never answers (`webhook_sink --hang`), so every attempt waits for `WEBHOOK_TIMEOUT` "
        "(default 10 s). The two setups alternate order on every repetition.",
    ]
    return out


def _plan(text: str) -> str:
    """The first node of a rule's plan, e.g. `Index Scan using ix_orders_status_expires`."""
    first = text.split(" / ")[0].strip().removeprefix("->").strip()
    return first.split("  (cost")[0]


def lifecycle_section(result: dict[str, Any] | None) -> list[str]:
    if not result:
        return ["_not measured in this run_ (`python -m bench lifecycle`)"]
    rows = sorted(result["results"], key=lambda r: r["orders"])
    ratios = result.get("ratios", {})
    goal = result.get("goal_ratio", 1.5)
    out = _command(result)
    out += [
        f"Goals (issue 9): with the same {result['due']} orders due, a scan's time and the rows it "
        f"touches at {rows[-1]['orders']:,} ACTIVE orders ≤ {goal}x those at "
        f"{rows[0]['orders']:,}; a backlog of 10,000 due suspensions drains at a rate bounded by "
        "the DO budget, not by the database.",
        "",
        "| ACTIVE orders | idle scan median / p90 | rows read per idle scan "
        "| scan with the due orders | per due order | rows read / written by it |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        touched = r.get("rows_touched")
        written = r.get("rows_written")
        out.append(
            f"| {r['orders']:,} | {r['idle_scan_ms']} / {r['idle_scan_p90_ms']} ms | "
            f"{r.get('idle_rows_touched', '-')} | "
            f"{r['due_scan_s']} s ({r['due']} due) | {r['per_due_order_ms']} ms | "
            f"{'-' if touched is None else f'{touched:,} / {written:,}'} |"
        )
    if ratios:
        parts = [f"{label} **{ratios[key]}x**" for key, label in JUDGED_RATIOS if key in ratios]
        verdict = "goal met" if worst_lifecycle_ratio(result) <= goal else "over the goal"
        out += [
            "",
            f"{ratios['large']:,} vs {ratios['small']:,} orders: " + ", ".join(parts) + f" "
            f"(goal ≤ {goal}x: {verdict}).",
        ]
    if not any("rows_touched" in r for r in rows):
        out += [
            "",
            "Rows touched are not counted by `bench/lifecycle_scan.py`; the plans below say "
            "which index each rule reads (a `Seq Scan` reads every order).",
        ]
    out += ["", "| rule | " + " | ".join(f"plan at {r['orders']:,}" for r in rows) + " |"]
    out.append("| --- | " + " | ".join("---" for _ in rows) + " |")
    for rule in rows[-1].get("plans", {}):
        cells = " | ".join(f"`{_plan(r.get('plans', {}).get(rule, '-'))}`" for r in rows)
        out.append(f"| {rule} | {cells} |")
    out += ["", *_drain_lines(result.get("drain"))]
    out += [
        "",
        "Each size: a fresh database `order_service_bench_lifecycle` with N ACTIVE orders in "
        "their period (expiry 1-365 days ahead); the idle scan is the median of 20 scans with "
        f"nothing due; then {result['due']} orders 40 days past their expiry are added and one "
        "scan suspends them all (transition, history, event, SHUTDOWN and POWER_OFF actions, in "
        "batches). Measured in-process by `bench/lifecycle_scan.py` (the scanner class, no HTTP); "
        "rows are PostgreSQL's own counters (`pg_stat_user_tables`: heap rows read by sequential "
        "and index scans, rows inserted, updated, deleted), read after the scanner's connections "
        "closed.",
    ]
    return out


def _drain_lines(drain: dict[str, Any] | None) -> list[str]:
    """The backlog run of `bench/lifecycle_drain.py`: the database half vs the DO half."""
    if not drain:
        return ["Backlog drain: _not measured in this run_ (`python -m bench.lifecycle_drain`)."]
    d = drain["summary"]
    return [
        f"**Backlog drain** (`bench/lifecycle_drain.py`, one `serve` process, fake DO at 250/min, "
        f"the service's budget {d['budget_per_min']}/min): {d['due']:,} orders due for suspension "
        f"at once. Database half: all SUSPENDED (transition, history, event, SHUTDOWN and delayed "
        f"POWER_OFF actions) after **{d['db_all_suspended_s']} s**, "
        f"{d['db_suspensions_per_s']} suspensions/s. DO half, over the steady "
        f"{d['steady_window_s']} s after the first minute: **{d['droplets_off_per_min']} droplets "
        f"off per minute** with **{d['do_requests_per_min']} DO requests per minute** "
        f"({d['budget_used']}x the budget; {d['do_requests_per_suspension']} requests per "
        f"suspension), {d['rate_limited']} x 429; the whole backlog's droplets would be off after "
        f"about {d['projected_drain_min']} minutes. The database half is "
        f"{d['db_over_do_rate']}x faster than the DO half: the drain is bounded by the DO budget.",
    ]


def worst_lifecycle_ratio(result: dict[str, Any]) -> float:
    """The largest of the judged ratios (0 when none was measured)."""
    ratios = result.get("ratios", {})
    return max((ratios[key] for key, _ in JUDGED_RATIOS if key in ratios), default=0)
