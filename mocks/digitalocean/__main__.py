"""``python -m mocks.digitalocean``: serve the fake DigitalOcean API with uvicorn.

Flags win over environment variables, which win over the defaults.
"""

import argparse
import os
import sys
from collections.abc import Sequence

import uvicorn

from mocks.digitalocean.app import create_app
from mocks.digitalocean.config import DEFAULT_DROPLET_LIMIT
from mocks.digitalocean.state import FakeConfig

DEFAULT_TOKEN = "fake-do-token"


def _env_list(name: str) -> list[str] | None:
    # FAKE_DO_TOKEN and FAKE_DO_ACCOUNT may list several values separated by commas.
    raw = os.environ.get(name, "")
    values = [value.strip() for value in raw.split(",") if value.strip()]
    return values or None


def _account_pair(raw: str) -> tuple[str, str]:
    """``NAME=TOKEN`` -> (token, name)."""
    name, sep, token = raw.partition("=")
    if not sep or not name.strip() or not token.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=TOKEN, got {raw!r}")
    return token.strip(), name.strip()


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
        help="accepted bearer token, its own account; repeat for several (default fake-do-token)",
    )
    parser.add_argument(
        "--account",
        action="append",
        dest="accounts",
        type=_account_pair,
        metavar="NAME=TOKEN",
        help="accept TOKEN as a token of account NAME; repeat for several",
    )
    parser.add_argument(
        "--droplet-limit",
        type=int,
        default=int(env.get("FAKE_DO_DROPLET_LIMIT", str(DEFAULT_DROPLET_LIMIT))),
        help=f"droplets each account may hold (default {DEFAULT_DROPLET_LIMIT}; DO gives 25)",
    )
    args = parser.parse_args(argv)
    if args.accounts is None:
        env_accounts = _env_list("FAKE_DO_ACCOUNT") or []
        try:
            args.accounts = [_account_pair(raw) for raw in env_accounts]
        except argparse.ArgumentTypeError as error:
            parser.error(f"FAKE_DO_ACCOUNT: {error}")
    args.token_accounts = dict(args.accounts)
    tokens = args.tokens or _env_list("FAKE_DO_TOKEN")
    if tokens is None:  # the default token only when no token is given at all
        tokens = [] if args.token_accounts else [DEFAULT_TOKEN]
    args.tokens = list(dict.fromkeys([*tokens, *args.token_accounts]))
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    config = FakeConfig(
        boot_seconds=args.boot_seconds,
        action_seconds=args.action_seconds,
        per_minute=args.per_minute,
        per_hour=args.per_hour,
        tokens=args.tokens,
        token_accounts=args.token_accounts,
        droplet_limit=args.droplet_limit,
    )
    # uvicorn logs at warning level, so say once where we listen.
    print(
        f"fake DigitalOcean API on http://{args.host}:{args.port} "
        f"(boot {args.boot_seconds}s, actions {args.action_seconds}s, "
        f"{args.per_minute}/min, {args.per_hour}/h, {len(args.tokens)} token(s), "
        f"{args.droplet_limit} droplets an account)",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
