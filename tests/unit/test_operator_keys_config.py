"""INTERNAL_API_KEYS, CORS_ORIGINS and MAX_UNPAID_ORDERS_PER_USER as settings (SPEC section 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from order_service.config import ConfigError, OperatorKey, Settings, load_settings

SECRET = "unit-secret-that-is-long-enough-for-hs256"
VARIABLES = [name.upper() for name in Settings.model_fields]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def settings(**values: object) -> Settings:
    base: dict[str, object] = {"jwt_algorithm": "HS256", "jwt_secret": SECRET, "_env_file": None}
    return load_settings(**{**base, **values})


def config_error(**values: object) -> str:
    with pytest.raises(ConfigError) as caught:
        settings(**values)
    return str(caught.value)


def test_named_keys_come_after_the_unnamed_one() -> None:
    loaded = settings(internal_api_key="plain", internal_api_keys=" ops=k1 , ci-bot=b64+/x==")
    assert loaded.operator_keys == (
        OperatorKey(None, b"plain"),
        OperatorKey("ops", b"k1"),
        OperatorKey("ci-bot", b"b64+/x=="),  # a key may contain "="
    )


def test_named_keys_alone_are_enough_to_start() -> None:
    assert settings(internal_api_keys="ops=k1").operator_keys == (OperatorKey("ops", b"k1"),)


def test_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERNAL_API_KEYS", "old=key-a,new=key-b")
    assert [k.name for k in settings().operator_keys] == ["old", "new"]


@pytest.mark.parametrize("values", [{}, {"internal_api_key": ""}, {"internal_api_keys": " "}])
def test_no_key_at_all_names_internal_api_key(values: dict[str, str]) -> None:
    message = config_error(**values)
    assert message.startswith("INTERNAL_API_KEY ")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("just-a-secret-key", "entry 1 is not name=key"),
        ("ops=k1,=k2", "entry 2 is not name=key"),
        ("ops=", "entry 1 is not name=key"),
        ("ops=k1,,ci=k2", "entry 2 is not name=key"),
        ("ops=k1,ops=k2", "used twice"),
        ("ops=k1,ci=k1", "two keys are the same"),
        ("op s=k1", "a name is"),
        ("admin:x=k1", "a name is"),
    ],
)
def test_a_malformed_list_names_internal_api_keys_and_never_shows_a_key(
    raw: str, problem: str
) -> None:
    message = config_error(internal_api_key="plain", internal_api_keys=raw)
    assert message.startswith("INTERNAL_API_KEYS"), message
    assert problem in message
    for secret in ("just-a-secret-key", "k1", "k2"):
        assert secret not in message


def test_a_named_key_equal_to_internal_api_key_is_refused() -> None:
    assert "two keys are the same" in config_error(
        internal_api_key="same", internal_api_keys="ops=same"
    )


def test_keys_are_hidden_in_the_settings_repr() -> None:
    loaded = settings(internal_api_keys="ops=very-secret-key")
    assert "very-secret-key" not in repr(loaded)


# ------------------------------------------------------------------ CORS_ORIGINS


def test_cors_is_off_by_default() -> None:
    assert settings(internal_api_key="k").cors_origin_list == ()


def test_cors_origins_are_split_and_trimmed() -> None:
    loaded = settings(
        internal_api_key="k", cors_origins=" http://localhost:4200/, https://app.example.com:8443"
    )
    assert loaded.cors_origin_list == ("http://localhost:4200", "https://app.example.com:8443")


@pytest.mark.parametrize("value", ["localhost:4200", "http://x/path", "ftp://x", "http://"])
def test_a_malformed_origin_names_cors_origins(value: str) -> None:
    assert config_error(internal_api_key="k", cors_origins=value).startswith("CORS_ORIGINS")


# ------------------------------------------------------------------ MAX_UNPAID_ORDERS_PER_USER


def test_unpaid_limit_default_zero_and_negative(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings(internal_api_key="k").max_unpaid_orders_per_user == 10
    monkeypatch.setenv("MAX_UNPAID_ORDERS_PER_USER", "0")
    assert settings(internal_api_key="k").max_unpaid_orders_per_user == 0
    monkeypatch.setenv("MAX_UNPAID_ORDERS_PER_USER", "-1")
    assert "MAX_UNPAID_ORDERS_PER_USER" in config_error(internal_api_key="k")
