"""The roles on the command line (SPEC sections 8 and 12): `serve`, `serve --no-duties`,
`worker`, and how each reaches the app factory or the worker."""

from __future__ import annotations

from typing import Any

import pytest

import order_service.app
import order_service.logging_setup
import order_service.worker
from order_service.cli import _parser, main
from tests.unit.test_config import (
    clean_environment,  # noqa: F401  (fixture)
    hs256_env,
    one_stderr_line,
)

POSTGRES = "postgresql+asyncpg://orders@127.0.0.1:5432/orders"


@pytest.fixture
def uvicorn_runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """What `serve` hands to uvicorn.run, without serving anything."""
    import uvicorn

    calls: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append((app, kwargs)))
    monkeypatch.setattr(order_service.logging_setup, "configure_logging", lambda *a: None)
    return calls


@pytest.fixture
def worker_runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Where `worker` would listen, without binding or starting any duty."""
    listened: list[tuple[str, int]] = []

    def listen(host: str, port: int) -> tuple[str, int]:
        listened.append((host, port))
        return host, port

    async def run_worker(settings: Any, sock: Any) -> int:
        assert sock == listened[-1]
        return 0

    monkeypatch.setattr(order_service.worker, "listen", listen)
    monkeypatch.setattr(order_service.worker, "run_worker", run_worker)
    monkeypatch.setattr(order_service.logging_setup, "configure_logging", lambda *a: None)
    return listened


def test_parsing_of_the_roles() -> None:
    parser = _parser()
    assert parser.parse_args(["serve"]).duties is True
    assert parser.parse_args(["serve", "--no-duties"]).duties is False
    both = parser.parse_args(["serve", "--no-duties", "--workers", "3", "--port", "8080"])
    assert (both.duties, both.workers, both.port) == (False, 3, 8080)
    worker = parser.parse_args(["worker"])
    assert (worker.command, worker.host, worker.port) == ("worker", None, None)
    worker = parser.parse_args(["worker", "--host", "127.0.0.1", "--port", "9000"])
    assert (worker.host, worker.port) == ("127.0.0.1", 9000)
    with pytest.raises(SystemExit):
        parser.parse_args(["worker", "--no-duties"])


@pytest.mark.parametrize(
    ("argv", "factory"),
    [
        (["serve"], "order_service.app:app_factory"),
        (["serve", "--no-duties"], "order_service.app:api_only_factory"),
        (["serve", "--no-duties", "--workers", "2"], "order_service.app:api_only_factory"),
    ],
)
def test_serve_picks_the_factory_of_its_role(
    monkeypatch: pytest.MonkeyPatch,
    uvicorn_runs: list[tuple[str, dict[str, Any]]],
    argv: list[str],
    factory: str,
) -> None:
    hs256_env(monkeypatch, DATABASE_URL=POSTGRES, PORT="3400")
    assert main(argv) == 0
    [(app, options)] = uvicorn_runs
    assert app == factory
    assert options["factory"] is True
    assert options["port"] == 3400


@pytest.mark.parametrize(
    ("factory", "start_provisioner"),
    [(order_service.app.app_factory, None), (order_service.app.api_only_factory, False)],
)
def test_each_factory_builds_the_app_of_its_role(
    monkeypatch: pytest.MonkeyPatch, factory: Any, start_provisioner: bool | None
) -> None:
    hs256_env(monkeypatch)
    built: list[bool | None] = []

    def create_app(settings: Any, *, start_provisioner: bool | None = None) -> str:
        built.append(start_provisioner)
        return "app"

    monkeypatch.setattr(order_service.app, "create_app", create_app)
    monkeypatch.setattr(order_service.logging_setup, "configure_logging", lambda *a: None)
    monkeypatch.setattr(order_service.app.gc, "freeze", lambda: None)
    assert factory() == "app"
    assert built == [start_provisioner]


def test_worker_listens_on_worker_port_by_default(
    monkeypatch: pytest.MonkeyPatch, worker_runs: list[tuple[str, int]]
) -> None:
    hs256_env(monkeypatch, DATABASE_URL=POSTGRES, PORT="3333")
    assert main(["worker"]) == 0
    assert worker_runs == [("0.0.0.0", 3334)]
    hs256_env(monkeypatch, WORKER_PORT="4444", HOST="127.0.0.1")
    assert main(["worker"]) == 0
    assert worker_runs[-1] == ("127.0.0.1", 4444)
    assert main(["worker", "--host", "::1", "--port", "5555"]) == 0
    assert worker_runs[-1] == ("::1", 5555)


def test_worker_exit_code_is_run_workers(
    monkeypatch: pytest.MonkeyPatch, worker_runs: list[tuple[str, int]]
) -> None:
    async def duties_did_not_stop(settings: Any, sock: Any) -> int:
        return 1

    monkeypatch.setattr(order_service.worker, "run_worker", duties_did_not_stop)
    hs256_env(monkeypatch, DATABASE_URL=POSTGRES)
    assert main(["worker"]) == 1


@pytest.mark.parametrize(
    "argv", [["worker"], ["serve", "--no-duties"]], ids=["worker", "no-duties"]
)
def test_a_split_role_on_sqlite_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    uvicorn_runs: list[tuple[str, dict[str, Any]]],
    worker_runs: list[tuple[str, int]],
    argv: list[str],
) -> None:
    hs256_env(monkeypatch, DATABASE_URL="sqlite+aiosqlite:///./one.db")
    assert main(argv) == 2
    line = one_stderr_line(capsys)
    assert "DATABASE_URL" in line
    assert "SQLite" in line
    assert uvicorn_runs == []
    assert worker_runs == []


def test_serve_with_both_roles_on_sqlite_still_starts(
    monkeypatch: pytest.MonkeyPatch, uvicorn_runs: list[tuple[str, dict[str, Any]]]
) -> None:
    hs256_env(monkeypatch, DATABASE_URL="sqlite+aiosqlite:///./one.db")
    assert main(["serve"]) == 0
    assert [app for app, _ in uvicorn_runs] == ["order_service.app:app_factory"]


def test_worker_with_bad_config_exits_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    worker_runs: list[tuple[str, int]],
) -> None:
    hs256_env(monkeypatch, DATABASE_URL=POSTGRES, WORKER_PORT="0")
    assert main(["worker"]) == 2
    assert "WORKER_PORT" in one_stderr_line(capsys)


def test_worker_port_in_use_is_one_line_naming_worker_port(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    monkeypatch.setattr(order_service.logging_setup, "configure_logging", lambda *a: None)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        hs256_env(monkeypatch, DATABASE_URL=POSTGRES, HOST="127.0.0.1", WORKER_PORT=str(port))
        assert main(["worker"]) == 2
    line = one_stderr_line(capsys)
    assert "WORKER_PORT" in line
    assert str(port) in line
