"""The load generator: wrk when available (installed on demand), else the httpx driver.

A run is closed-loop at fixed concurrency for a fixed duration; the result is
requests/s, latency percentiles (p50/p95/p99), errors, and the CPU that the
load generator, the server(s), PostgreSQL and the catalog mock used meanwhile,
so every table can show that the load generator was not the bottleneck.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bench.infra import LUA_DIR, CpuMeter, have, log

_tool: str | None = None


def ensure_wrk(install: bool = True) -> str:
    """'wrk' if usable (installing it with apt-get when allowed and possible), else 'httpx'."""
    global _tool
    if _tool is not None:
        return _tool
    if have("wrk") is None and install and have("apt-get") and os.geteuid() == 0:
        log("wrk not found: installing it with apt-get (Debian package 'wrk')")
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        if subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], **quiet).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], **quiet)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], **quiet)
    if have("wrk") is not None:
        _tool = "wrk"
    else:
        log("wrk unavailable: falling back to the httpx driver (numbers are NOT comparable)")
        _tool = "httpx"
    return _tool


@dataclass
class Load:
    """What to send: a path or a Lua script with its arguments, and headers."""

    name: str
    path: str = "/"
    script: str = "plain.lua"
    script_args: Sequence[str] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    method: str = "GET"
    body: str | None = None
    # For the httpx driver: a file of ids and how the path is built from one.
    ids_file: str | None = None
    id_path: str | None = None  # e.g. "/api/v1/orders/{id}"
    sequential_ids: bool = False
    skip: int = 0


def run(
    base_url: str,
    load: Load,
    *,
    connections: int,
    duration_s: float,
    meter: CpuMeter | None = None,
    timeout_s: float = 10,
) -> dict[str, object]:
    tool = ensure_wrk()
    if tool == "wrk":
        argv = [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(duration_s))}s",
            f"--timeout={round(timeout_s)}s",
            "-s",
            str(LUA_DIR / load.script),
        ]
        for name, value in load.headers.items():
            argv += ["-H", f"{name}: {value}"]
        argv.append(base_url.rstrip("/") + load.path)
        if load.script_args:
            argv += ["--", *load.script_args]
    else:
        argv = [
            sys.executable,
            "-m",
            "bench.driver",
            "--url",
            base_url,
            "--connections",
            str(connections),
            "--duration",
            str(duration_s),
            "--spec",
            json.dumps(load.__dict__),
        ]
    env = {**os.environ, "BENCH_LUA_DIR": str(LUA_DIR)}
    if meter is not None:
        meter.start()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = process.communicate(timeout=duration_s + 60)
    cpu = meter.stop(waited_child=True) if meter is not None else {}
    line = next(
        (ln for ln in out.decode().splitlines() if ln.startswith("BENCH_JSON ")),
        None,
    )
    if line is None:
        raise RuntimeError(f"{tool} gave no result: {out.decode()[-2000:]} {err.decode()[-2000:]}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    seconds = raw["duration_us"] / 1e6
    errors = raw["errors"]
    lat = raw["latency_us"]
    return {
        "tool": tool,
        "connections": connections,
        "duration_s": round(seconds, 2),
        "requests": raw["requests"],
        "rps": round(raw["requests"] / seconds, 1),
        "p50_ms": round(lat["p50"] / 1000, 2),
        "p90_ms": round(lat["p90"] / 1000, 2),
        "p95_ms": round(lat["p95"] / 1000, 2),
        "p99_ms": round(lat["p99"] / 1000, 2),
        "max_ms": round(lat["max"] / 1000, 2),
        "errors": sum(errors.values()),
        "error_kinds": {k: v for k, v in errors.items() if v},
        "cpu_pct": cpu,
    }
