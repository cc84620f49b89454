"""``python -m mocks.webhook_receiver [--port 4020] [--secret whsec_…]`` (from the repo root).

The secret may also come from WEBHOOK_SECRET (it is never printed).
"""

from __future__ import annotations

import argparse
import os
import sys

import uvicorn

from mocks.webhook_receiver.app import create_app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mocks.webhook_receiver",
        description="Receive the order service's webhooks, verify them, print one line each.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=os.environ.get("WEBHOOK_RECEIVER_PORT", "4020"),
        help="port (default $WEBHOOK_RECEIVER_PORT, else 4020)",
    )
    parser.add_argument(
        "--secret",
        default=os.environ.get("WEBHOOK_SECRET"),
        help="the endpoint's whsec_… secret (default $WEBHOOK_SECRET)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    verified = "verifying signatures" if args.secret else "NOT verifying (no secret)"
    print(f"webhook receiver on http://{args.host}:{args.port}, {verified}", file=sys.stderr)
    uvicorn.run(create_app(args.secret), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
