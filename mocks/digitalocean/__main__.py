"""``python -m mocks.digitalocean``: serve the fake DigitalOcean API with uvicorn.

Flags win over environment variables, which win over the defaults.
"""

import argparse
import os
import sys
from collections.abc import Sequence

import uvicorn

from mocks.digitalocean.app import create_app
from mocks.digitalocean.state import FakeConfig


def _env_tokens() -> list[str] | None:
    # FAKE_DO_TOKEN may list several tokens separated by commas.
    raw = os.environ.get("FAKE_DO_TOKEN", "")
    tokens = [token.strip() for token in raw.split(",") if token.strip()]
    return tokens or None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="python -m mocks.digitalocean",
        description="Fake DigitalOcean API v2 for local runs, tests and benchmarks.",
    )
    parser.add_argument("--host", default=env.get("FAKE_DO_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env.get("FAKE_DO_PORT", "4010")))
    parser.add_argument(
        "--boot-seconds",
        type=float,
        default=float(env.get("FAKE_DO_BOOT_SECONDS", "2.0")),
        help="seconds from creation until a droplet is active (default 2)",
    )
    parser.add_argument(
        "--action-seconds",
        type=float,
        default=float(env.get("FAKE_DO_ACTION_SECONDS", "1.0")),
        help="seconds a droplet action (reboot, rebuild, ...) stays in-progress (default 1)",
    )
    parser.add_argument("--per-minute", type=int, default=int(env.get("FAKE_DO_PER_MINUTE", "250")))
    parser.add_argument("--per-hour", type=int, default=int(env.get("FAKE_DO_PER_HOUR", "5000")))
    parser.add_argument(
        "--token",
        action="append",
        dest="tokens",
        help="accepted bearer token; repeat for several (default fake-do-token)",
    )
    args = parser.parse_args(argv)
    args.tokens = args.tokens or _env_tokens() or ["fake-do-token"]
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    config = FakeConfig(
        boot_seconds=args.boot_seconds,
        action_seconds=args.action_seconds,
        per_minute=args.per_minute,
        per_hour=args.per_hour,
        tokens=args.tokens,
    )
    # uvicorn logs at warning level, so say once where we listen.
    print(
        f"fake DigitalOcean API on http://{args.host}:{args.port} "
        f"(boot {args.boot_seconds}s, actions {args.action_seconds}s, "
        f"{args.per_minute}/min, {args.per_hour}/h)",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
