"""docs/configuration.md and .env.example: generated from the settings, never stale."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from mocks.dev_stack.config import DEV_DEFAULTS
from order_service.cli import main
from order_service.config import GROUPS, Settings, load_settings
from order_service.config_docs import (
    DEV_VALUES,
    render_configuration,
    render_default,
    render_env_example,
)
from order_service.config_values import format_duration

REPO = Path(__file__).resolve().parents[2]
GENERATED = {
    REPO / "docs" / "configuration.md": render_configuration,
    REPO / ".env.example": render_env_example,
}
REGENERATE = (
    "{name} is out of date with the settings. Regenerate it with `make config-docs` (or "
    "`.venv/bin/order-service config-docs --output docs/configuration.md --env-example "
    ".env.example`) and commit the result."
)


@pytest.mark.parametrize("path", sorted(GENERATED), ids=lambda p: p.name)
def test_committed_file_is_what_the_generator_writes(path: Path) -> None:
    assert path.exists(), REGENERATE.format(name=path.name)
    assert path.read_text() == GENERATED[path](), REGENERATE.format(name=path.name)


def test_the_command_writes_both_files(tmp_path: Path) -> None:
    docs, example = tmp_path / "configuration.md", tmp_path / "env.example"
    assert main(["config-docs", "--output", str(docs), "--env-example", str(example)]) == 0
    assert docs.read_text() == render_configuration()
    assert example.read_text() == render_env_example()


def test_every_setting_is_in_one_group_and_described() -> None:
    grouped = [name for group in GROUPS for name in group.model_fields]
    assert sorted(grouped) == sorted(Settings.model_fields)
    assert len(grouped) == len(set(grouped))
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name.upper()} has no description"


def test_every_variable_is_documented_with_its_default() -> None:
    text = render_configuration()
    for name, field in Settings.model_fields.items():
        assert f"| `{name.upper()}` |" in text
        assert f"{name.upper()}=" in render_env_example()
        rendered = render_default(field.default)
        assert (rendered if rendered == "unset" else f"`{rendered}`") in text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(days=7), "P7D"),
        (timedelta(seconds=30), "PT30S"),
        (timedelta(minutes=10), "PT10M"),
        (timedelta(hours=2, minutes=30), "PT2H30M"),
        (timedelta(seconds=0.5), "PT0.5S"),
        (timedelta(days=1, hours=1), "P1DT1H"),
        (timedelta(0), "PT0S"),
    ],
)
def test_durations_are_written_in_iso_8601(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


def test_defaults_are_rendered_as_the_environment_takes_them() -> None:
    assert render_default(None) == "unset"
    assert render_default(()) == "unset"
    assert render_default(True) == "true"
    assert render_default(30.0) == "30"
    assert render_default((timedelta(days=7), timedelta(days=1))) == "P7D,P1D"


def test_rendered_durations_read_back_as_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each default, written as the documents write it, is what the service reads.
    for name, field in Settings.model_fields.items():
        rendered = render_default(field.default)
        if isinstance(field.default, timedelta | tuple) and rendered != "unset":
            monkeypatch.setenv(name.upper(), rendered)
    settings = load_settings(
        _env_file=None, internal_api_key="k", jwt_algorithm="HS256", jwt_secret="s"
    )
    for name, field in Settings.model_fields.items():
        if isinstance(field.default, timedelta | tuple):
            assert getattr(settings, name) == field.default, name


def test_dev_values_are_those_of_make_run() -> None:
    ports = {"catalog_port": 4000, "do_port": 4010}
    assert {name: value.format(**ports) for name, value in DEV_DEFAULTS.items()} == DEV_VALUES


def test_env_example_as_dotenv_is_the_make_run_setup(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)
    settings = load_settings(_env_file=REPO / ".env.example")
    for name, value in DEV_VALUES.items():
        setting = getattr(settings, name.lower())
        if isinstance(setting, SecretStr):
            setting = setting.get_secret_value()
        assert str(setting) == value, name
    # Everything else keeps the service's default.
    assert settings.port == 3333
    assert settings.database_url == Settings.model_fields["database_url"].default
