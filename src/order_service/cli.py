"""`order-service` command line (SPEC section 8): migrate, serve [--no-duties], worker, seed,
rotate-secrets, token, openapi, config-docs."""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from order_service.config import ConfigError, DatabaseSettings, Settings, load_settings
from order_service.errors import DATABASE_DOWN


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except ConfigError as exc:
        # One clear line naming the variable; never a stack trace.
        print(f"order-service: configuration error: {exc}", file=sys.stderr)
        return 2
    except DATABASE_DOWN as exc:
        first_line = next(iter(str(exc).splitlines()), type(exc).__name__)
        print(
            f"order-service: cannot reach the database (DATABASE_URL): {first_line}",
            file=sys.stderr,
        )
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="order-service", description="Order & provisioning service of the VPS platform"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    migrate = commands.add_parser("migrate", help="upgrade DATABASE_URL to the latest schema")
    migrate.add_argument("--revision", default="head", help="target revision (default: head)")
    migrate.set_defaults(handler=_migrate)

    serve = commands.add_parser("serve", help="run the API and the background duties on HOST:PORT")
    serve.add_argument("--host", help="override HOST")
    serve.add_argument("--port", type=int, help="override PORT")
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.add_argument("--migrate", action="store_true", help="run `migrate` first")
    serve.add_argument(
        "--no-duties",
        dest="duties",
        action="store_false",
        help="the API alone: no background duty (run `order-service worker` for them)",
    )
    serve.set_defaults(handler=_serve)

    worker = commands.add_parser(
        "worker", help="run the background duties alone; health and metrics on WORKER_PORT"
    )
    worker.add_argument("--host", help="override HOST")
    worker.add_argument("--port", type=int, help="override WORKER_PORT")
    worker.set_defaults(handler=_worker)

    seed = commands.add_parser("seed", help="add sample orders in every state (demos)")
    seed.add_argument("--user", action="append", help="user id (sub) to own them; repeatable")
    seed.set_defaults(handler=_seed)

    rotate = commands.add_parser(
        "rotate-secrets", help="re-encrypt every stored secret with the first SECRETS_KEY"
    )
    rotate.set_defaults(handler=_rotate_secrets)

    openapi = commands.add_parser("openapi", help="print the OpenAPI document (JSON)")
    openapi.add_argument("--output", type=Path, help="write to this file instead of stdout")
    openapi.set_defaults(handler=_openapi)

    docs = commands.add_parser(
        "config-docs", help="print docs/configuration.md (every setting, from the code)"
    )
    docs.add_argument("--output", type=Path, help="write to this file instead of stdout")
    docs.add_argument("--env-example", type=Path, help="also write .env.example to this file")
    docs.set_defaults(handler=_config_docs)

    token = commands.add_parser("token", help="print a development JWT for a user")
    token.add_argument("--sub", required=True, help="the user id")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    token.add_argument("--private-key", type=Path, help="PEM private key (RS256 mode)")
    token.set_defaults(handler=_token)
    return parser


def _migrate(args: argparse.Namespace) -> int:
    from order_service.migrate import upgrade

    url = DatabaseSettings().database_url
    upgrade(url, args.revision)
    print(f"order-service: database at revision {args.revision}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from order_service.logging_setup import configure_logging

    settings = load_settings()
    if args.workers > 1 and settings.is_sqlite:
        raise ConfigError("DATABASE_URL: SQLite supports one process; use --workers 1")
    if not args.duties:
        _refuse_sqlite_for_roles(settings, "serve --no-duties")
    configure_logging(settings.log_format, settings.log_level)
    if args.migrate:
        from order_service.migrate import upgrade

        upgrade(settings.database_url)
    host = args.host or settings.host
    port = args.port or settings.port
    uvicorn.run(
        # The role is the factory: both, or the API alone (app.py).
        "order_service.app:app_factory" if args.duties else "order_service.app:api_only_factory",
        factory=True,
        host=host,
        port=port,
        workers=args.workers,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        # Gives the provisioner time to release its leases on SIGTERM.
        timeout_graceful_shutdown=10,
        timeout_keep_alive=math.ceil(settings.http_keep_alive_timeout.total_seconds()),
        **_fast_server_options(),
    )
    return 0


def _worker(args: argparse.Namespace) -> int:
    from order_service.logging_setup import configure_logging
    from order_service.worker import listen, run_worker

    settings = load_settings()
    _refuse_sqlite_for_roles(settings, "worker")
    configure_logging(settings.log_format, settings.log_level)
    sock = listen(args.host or settings.host, args.port or settings.worker_port)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(run_worker(settings, sock))


def _refuse_sqlite_for_roles(settings: Settings, command: str) -> None:
    # An API-only process needs a worker elsewhere, and a worker an API process:
    # two processes, which one SQLite file does not serve (SPEC section 12).
    if settings.is_sqlite:
        raise ConfigError(
            f"DATABASE_URL: SQLite is for one process; `{command}` needs PostgreSQL "
            "(on SQLite, run `serve`: the API and the duties together)"
        )


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed, as `serve` runs it (uvicorn[standard]), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _fast_server_options() -> dict[str, str]:
    """uvloop and httptools when installed (uvicorn[standard]), else the defaults."""
    options: dict[str, str] = {}
    try:
        import uvloop  # noqa: F401

        options["loop"] = "uvloop"
    except ImportError:
        pass
    try:
        import httptools  # noqa: F401

        options["http"] = "httptools"
    except ImportError:
        pass
    return options


def _seed(args: argparse.Namespace) -> int:
    from order_service.seed import seed

    url = DatabaseSettings().database_url
    created = asyncio.run(seed(url, args.user or ["demo-user-1", "demo-user-2"]))
    for line in created:
        print(line)
    return 0


def _rotate_secrets(args: argparse.Namespace) -> int:
    from order_service.rotate import rotate_secrets

    counts = asyncio.run(rotate_secrets(load_settings()))
    for table, count in counts.items():
        print(f"order-service: {table}: {count} secret(s) re-encrypted with the first key")
    return 0


def _openapi(args: argparse.Namespace) -> int:
    from order_service.openapi_export import openapi_document, serialize

    _write(serialize(openapi_document()), args.output)
    return 0


def _config_docs(args: argparse.Namespace) -> int:
    from order_service.config_docs import render_configuration, render_env_example

    _write(render_configuration(), args.output)
    if args.env_example is not None:
        _write(render_env_example(), args.env_example)
    return 0


def _write(text: str, output: Path | None) -> None:
    """`text` to `output`, or to stdout without one."""
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        print(f"order-service: wrote {output}")


def _token(args: argparse.Namespace) -> int:
    import jwt

    # The token command needs only the JWT settings; INTERNAL_API_KEY is not its business.
    settings = load_settings(internal_api_key="not-needed-for-token")
    now = int(time.time())
    claims: dict[str, object] = {"sub": args.sub, "iat": now, "exp": now + args.ttl}
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_algorithm == "RS256":
        if args.private_key is None:
            print(
                "order-service: JWT_ALGORITHM=RS256 needs --private-key FILE "
                "(a PEM private key matching JWT_PUBLIC_KEY)",
                file=sys.stderr,
            )
            return 2
        key = args.private_key.read_text()
    else:
        assert settings.jwt_secret is not None
        key = settings.jwt_secret.get_secret_value()
    print(jwt.encode(claims, key, algorithm=settings.jwt_algorithm))
    return 0


if __name__ == "__main__":
    sys.exit(main())
