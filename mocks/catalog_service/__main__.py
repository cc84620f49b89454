"""``python -m mocks.catalog_service [--host 127.0.0.1] [--port 4000]`` (from the repo root)."""

from __future__ import annotations

import argparse
import os
import sys

import uvicorn

from mocks.catalog_service.app import create_app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mocks.catalog_service", description="Run the catalog-service mock."
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    # A string default goes through type=int too, so a bad CATALOG_MOCK_PORT gets
    # argparse's clean error message instead of a traceback.
    parser.add_argument(
        "--port",
        type=int,
        default=os.environ.get("CATALOG_MOCK_PORT", "4000"),
        help="port (default $CATALOG_MOCK_PORT, else 4000)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # uvicorn logs only warnings, so say once where the mock is listening.
    print(f"catalog-service mock on http://{args.host}:{args.port}", file=sys.stderr)
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
