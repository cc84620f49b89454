"""The storm as a picture: `draw_storms(result["storms"], docs/storm.png)`.

One figure for the largest one-account storm of a run (every process count
measured for it, the first roles storm), four panels on one time axis (seconds
since the payments were sent): orders ACTIVE against the staircase of our
budget's lower bound, each order's PAID -> ACTIVE (sorted) against the per-order
bound's (issue 23), DO requests in the rolling 60 s before each sample against
DO's 250, and the probe's GET p99 per 5 s against 2x its idle p99. matplotlib
is in the `bench` extra; without it the harness measures everything and leaves
the picture out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import timeline
from bench.infra import log
from bench.storm_result import BUDGET_PER_MINUTE, BUDGET_SKEW_S, DO_PER_MINUTE, per_order_bounds

COLORS = ("tab:blue", "tab:orange", "tab:red", "tab:green", "tab:purple")


def storm_label(storm: dict[str, Any]) -> str:
    processes = storm.get("processes", 1)
    label = f"{processes} process" + ("es" if processes > 1 else "")
    if storm.get("split"):
        label += " (reads on the probed one)"
    if storm.get("roles"):
        label = "roles: 2 API-only + 1 worker"
    if storm.get("kill"):
        label += f", one SIGKILLed at {storm['kill']['at_s']:.0f} s"
    return label


def draw_storms(storms: list[dict[str, Any]], out: Path) -> Path | None:
    """Draw the largest storm's runs into `out` (PNG); None when there is nothing to draw
    or matplotlib is missing."""
    with_timeline = [s for s in storms if s.get("timeline")]
    if not with_timeline:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("no matplotlib: the storm picture is left out (pip install -e '.[bench]')")
        return None
    one_account = [s for s in with_timeline if s.get("accounts", 1) == 1] or with_timeline
    size = max(s["orders"] for s in one_account)
    runs = [s for s in one_account if s["orders"] == size]
    # Of the repeated roles storms only the first: the others look alike and crowd it.
    first_roles = next((s for s in runs if s.get("roles")), None)
    runs = [s for s in runs if not s.get("roles") or s is first_roles]
    end = max(s["timeline"][-1]["t_s"] for s in runs) + 5
    fig, (active_ax, order_ax, rate_ax, p99_ax) = plt.subplots(
        4, 1, figsize=(10, 13.5), sharex=True, height_ratios=(1.2, 1.1, 1, 1)
    )
    first = runs[0]
    boot_s = first["boot_s"]
    fig.suptitle(
        f"Payment storm: {size} orders paid at once (fake DigitalOcean: "
        f"{DO_PER_MINUTE} requests/min, {boot_s:g} s boot)",
        fontsize=13,
    )
    stairs = timeline.budget_staircase(size, boot_s, BUDGET_PER_MINUTE, 60 + BUDGET_SKEW_S, end)
    active_ax.plot(
        [t for t, _ in stairs],
        [c for _, c in stairs],
        color="black",
        linestyle="--",
        linewidth=1.2,
        label=f"lower bound: our budget ({BUDGET_PER_MINUTE}/min), "
        f"all ACTIVE at {first['lower_bound']['our_budget_s']:.0f} s",
    )
    rate_ax.axhline(
        DO_PER_MINUTE, color="black", linewidth=1.2, label=f"DO's limit {DO_PER_MINUTE}"
    )
    rate_ax.axhline(
        BUDGET_PER_MINUTE,
        color="grey",
        linestyle=":",
        linewidth=1.2,
        label=f"our budget {BUDGET_PER_MINUTE}",
    )
    bounds = per_order_bounds(size, boot_s)
    order_ax.step(
        bounds,
        range(1, size + 1),
        where="post",
        color="black",
        linestyle="--",
        linewidth=1.2,
        label=f"per-order bound: mean {sum(bounds) / size:.1f} s",
    )
    for index, (color, storm) in enumerate(zip(COLORS, runs, strict=False)):
        _draw_run(active_ax, rate_ax, p99_ax, storm, color, goal_label=index == 0)
        _draw_per_order(order_ax, storm, color)
    order_ax.set_ylabel("orders, sorted by\ntheir PAID -> ACTIVE")
    order_ax.set_ylim(0, size * 1.08)
    active_ax.set_ylabel("orders ACTIVE")
    active_ax.set_ylim(0, size * 1.08)
    rate_ax.set_ylabel("DO requests in the\nrolling 60 s")
    rate_ax.set_ylim(0, max(DO_PER_MINUTE * 1.25, rate_ax.get_ylim()[1]))
    p99_ax.set_ylabel("probe GET detail p99 (ms)\nper 5 s, log scale")
    p99_ax.set_yscale("log")
    p99_ax.set_xlabel("seconds since the payments were sent (negative: idle probe before)")
    p99_ax.set_xlim(-7, end)
    for ax in (active_ax, order_ax, rate_ax, p99_ax):
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=8.5)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    log(f"wrote {out}")
    return out


def _draw_per_order(ax: Any, storm: dict[str, Any], color: str) -> None:
    """Each order's PAID -> ACTIVE, sorted: x seconds, y how many orders took at most that."""
    figures = storm.get("paid_to_active") or {}
    seconds = figures.get("sorted_s") or []
    if not seconds:
        return
    ax.step(
        seconds,
        range(1, len(seconds) + 1),
        where="post",
        color=color,
        linewidth=1.8,
        label=f"{storm_label(storm)}: mean {figures['mean_s']:.1f} s "
        f"({figures['mean_vs_bound']:.2f}x the bound's)",
    )


def _draw_run(
    active_ax: Any,
    rate_ax: Any,
    p99_ax: Any,
    storm: dict[str, Any],
    color: str,
    *,
    goal_label: bool,
) -> None:
    rows = storm["timeline"]
    label = storm_label(storm)
    times = [r["t_s"] for r in rows]
    done = storm["seconds_to_all_active"]
    active_ax.plot(
        times,
        [r["active"] for r in rows],
        color=color,
        linewidth=1.8,
        label=f"{label}: all ACTIVE at {done:.1f} s ({storm['vs_budget_bound']:.2f}x the bound)"
        if storm["all_active"]
        else f"{label}: {storm['active']} of {storm['orders']} ACTIVE at {done:.1f} s",
    )
    rolling = timeline.rolling_minute([(r["t_s"], r["do_requests"]) for r in rows])
    busiest = storm.get("busiest_minute") or {}
    rate_ax.plot(
        [t for t, _ in rolling],
        [c for _, c in rolling],
        color=color,
        linewidth=1.8,
        label=f"{label}: busiest minute {busiest.get('requests', '-')}, "
        f"429s {storm['rate_limited_429']}",
    )
    # Where 429s were answered: a mark on the curve at each sample whose count grew.
    marks = [
        (t, c)
        for (t, c), before, row in zip(rolling[1:], rows, rows[1:], strict=False)
        if row["do_429"] > before["do_429"]
    ]
    if marks:
        rate_ax.scatter(
            [t for t, _ in marks], [c for _, c in marks], color=color, marker="x", s=25, zorder=3
        )
    buckets = storm.get("probe_p99_timeline") or []
    idle = storm["probe_idle"]["p99_ms"]
    p99_ax.plot(
        [b["t_s"] + 2.5 for b in buckets],
        [max(b["p99_ms"], 0.1) for b in buckets],
        color=color,
        marker="o",
        markersize=3,
        linewidth=1.5,
        label=f"{label}: idle {idle:.1f} ms -> storm {storm['probe_storm']['p99_ms']:.1f} ms",
    )
    if idle:
        p99_ax.axhline(
            2 * idle,
            color=color,
            linestyle=":",
            linewidth=1,
            alpha=0.8,
            # One legend entry says what the dotted lines are (each in its run's colour).
            label="goal: < 2x the run's idle p99 (dotted)" if goal_label else "_nolegend_",
        )
    kill = storm.get("kill")
    if kill:
        for ax in (active_ax, rate_ax, p99_ax):
            ax.axvline(kill["at_s"], color=color, linestyle="-.", linewidth=1, alpha=0.8)
        active_ax.annotate(
            "SIGKILL",
            (kill["at_s"], 0),
            xytext=(4, 8),
            textcoords="offset points",
            color=color,
            fontsize=8,
        )
