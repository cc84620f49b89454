"""How docs/benchmarks.md writes numbers and reads saved results (shared by the report modules)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def spread(low: float, high: float, digits: int = 0) -> str:
    return f"{num(low, digits)}-{num(high, digits)}"


def times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio}x"


def routes(by_route: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in by_route.items() if v)


def run_note(result: dict[str, Any]) -> str:
    """Which run a result comes from: its commit and date."""
    facts = result.get("machine", {})
    return f"commit `{facts.get('git_commit')}`, {facts.get('date_utc')}"


def load(results: Path, name: str) -> dict[str, Any] | None:
    """`results/NAME.json`, or None when that phase was not run."""
    path = results / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None
