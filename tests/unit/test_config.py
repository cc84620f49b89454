"""Settings of SPEC section 2 and the command line's handling of bad configuration."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from order_service.auth import JWTVerifier
from order_service.cli import main
from order_service.config import ConfigError, Settings, load_settings
from tests.conftest import make_settings
from tests.unit.jwt_keys import PRIVATE_PEM, PUBLIC_PEM

SECRET = "cli-secret-that-is-long-enough-for-hs256"

# Every variable Settings reads: none may leak in from the developer's shell.
VARIABLES = [name.upper() for name in Settings.model_fields]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # No .env of the repository (or anywhere else) is read from here.
    monkeypatch.chdir(tmp_path)


def set_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def hs256_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    """A valid HS256 configuration, with `values` added or replaced."""
    set_env(
        monkeypatch,
        **{"INTERNAL_API_KEY": "k", "JWT_ALGORITHM": "HS256", "JWT_SECRET": SECRET, **values},
    )


def config_error(**overrides: object) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None, **overrides)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --------------------------------------------------------------------- defaults


def test_defaults_of_the_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, INTERNAL_API_KEY="k", JWT_PUBLIC_KEY=PUBLIC_PEM)
    settings = load_settings(_env_file=None)
    assert settings.database_url == "sqlite+aiosqlite:///./order-service.db"
    assert settings.host == "0.0.0.0"
    assert settings.port == 3333
    assert settings.catalog_service_url == "http://localhost:4000"
    assert settings.catalog_service_timeout_ms == 5000
    assert settings.jwt_algorithm == "RS256"
    assert settings.jwt_secret is None
    assert settings.jwt_issuer is None
    assert settings.jwt_audience is None
    assert settings.digitalocean_api_url == "https://api.digitalocean.com"
    assert settings.digitalocean_api_token is None  # not required to start
    assert settings.digitalocean_default_region == "sgp1"
    assert settings.provisioning_poll_interval_ms == 5000
    assert settings.provisioning_max_attempts == 60
    assert settings.provisioning_deadline_s == 300


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    hs256_env(
        monkeypatch,
        DATABASE_URL="postgresql+asyncpg://u@db:5432/orders",
        PORT="8080",
        CATALOG_SERVICE_TIMEOUT_MS="250",
        JWT_ISSUER="https://auth.test",
        JWT_AUDIENCE="orders",
        DIGITALOCEAN_DEFAULT_REGION="nyc3",
    )
    settings = load_settings(_env_file=None)
    assert settings.database_url == "postgresql+asyncpg://u@db:5432/orders"
    assert settings.port == 8080
    assert settings.catalog_service_timeout_ms == 250
    assert settings.jwt_issuer == "https://auth.test"
    assert settings.jwt_audience == "orders"
    assert settings.digitalocean_default_region == "nyc3"
    assert settings.jwt_verification_key == SECRET


def test_dot_env_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"INTERNAL_API_KEY=from-dotenv\nJWT_ALGORITHM=HS256\nJWT_SECRET={SECRET}\nPORT=4444\n"
    )
    settings = load_settings()
    assert settings.internal_api_key is not None
    assert settings.internal_api_key.get_secret_value() == "from-dotenv"
    assert settings.port == 4444


def test_environment_wins_over_dot_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"INTERNAL_API_KEY=k\nJWT_ALGORITHM=HS256\nJWT_SECRET={SECRET}\nPORT=4444\n"
    )
    monkeypatch.setenv("PORT", "5555")
    assert load_settings().port == 5555


def test_algorithm_is_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    hs256_env(monkeypatch, JWT_ALGORITHM=" hs256 ")
    assert load_settings(_env_file=None).jwt_algorithm == "HS256"


def test_secrets_do_not_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    hs256_env(monkeypatch, INTERNAL_API_KEY="very-secret-key", DIGITALOCEAN_API_TOKEN="dop_v1_x")
    text = repr(load_settings(_env_file=None))
    assert "very-secret-key" not in text
    assert SECRET not in text
    assert "dop_v1_x" not in text


# ---------------------------------------------------------------------- errors


def test_internal_api_key_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, JWT_ALGORITHM="HS256", JWT_SECRET=SECRET)
    assert "INTERNAL_API_KEY" in config_error()


def test_empty_internal_api_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    hs256_env(monkeypatch, INTERNAL_API_KEY="")
    assert "INTERNAL_API_KEY" in config_error()


def test_rs256_needs_a_public_key(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, INTERNAL_API_KEY="k")  # RS256 is the default
    assert "JWT_PUBLIC_KEY" in config_error()


def test_rs256_ignores_a_secret_and_still_needs_a_public_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_env(monkeypatch, INTERNAL_API_KEY="k", JWT_ALGORITHM="RS256", JWT_SECRET=SECRET)
    assert "JWT_PUBLIC_KEY" in config_error()


def test_hs256_needs_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, INTERNAL_API_KEY="k", JWT_ALGORITHM="HS256", JWT_PUBLIC_KEY=PUBLIC_PEM)
    assert "JWT_SECRET" in config_error()


@pytest.mark.parametrize("algorithm", ["ES256", "none", "HS512", ""])
def test_other_algorithms_are_refused(monkeypatch: pytest.MonkeyPatch, algorithm: str) -> None:
    hs256_env(monkeypatch, JWT_ALGORITHM=algorithm, JWT_PUBLIC_KEY=PUBLIC_PEM)
    assert "JWT_ALGORITHM" in config_error()


@pytest.mark.parametrize(
    "key",
    ["garbage", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", PRIVATE_PEM],
    ids=["garbage", "broken-pem", "private-key"],
)
def test_public_key_must_be_a_pem_public_key(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    set_env(monkeypatch, INTERNAL_API_KEY="k", JWT_PUBLIC_KEY=key)
    assert "JWT_PUBLIC_KEY" in config_error()


def test_public_key_must_be_rsa(monkeypatch: pytest.MonkeyPatch) -> None:
    ec_public = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    set_env(monkeypatch, INTERNAL_API_KEY="k", JWT_PUBLIC_KEY=ec_public)
    assert "JWT_PUBLIC_KEY" in config_error()


@pytest.mark.parametrize(
    "url",
    ["postgresql://u@db/orders", "mysql+aiomysql://u@db/orders", "sqlite:///x.db", "orders.db"],
)
def test_database_url_scheme(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    hs256_env(monkeypatch, DATABASE_URL=url)
    assert "DATABASE_URL" in config_error()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "abc"),
        ("PORT", "70000"),
        ("PORT", "0"),
        ("CATALOG_SERVICE_TIMEOUT_MS", "soon"),
        ("CATALOG_SERVICE_TIMEOUT_MS", "0"),
        ("PROVISIONING_POLL_INTERVAL_MS", "x"),
        ("PROVISIONING_MAX_ATTEMPTS", "0"),
    ],
)
def test_malformed_numbers_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    hs256_env(monkeypatch, **{variable: value})
    assert variable in config_error()


# ------------------------------------------------------------------------- CLI


def one_stderr_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"JWT_ALGORITHM": "HS256", "JWT_SECRET": SECRET}, "INTERNAL_API_KEY"),
        ({"INTERNAL_API_KEY": "k"}, "JWT_PUBLIC_KEY"),
        ({"INTERNAL_API_KEY": "k", "JWT_ALGORITHM": "HS256"}, "JWT_SECRET"),
        ({"INTERNAL_API_KEY": "k", "JWT_ALGORITHM": "ES256"}, "JWT_ALGORITHM"),
        ({"INTERNAL_API_KEY": "k", "JWT_PUBLIC_KEY": "garbage"}, "JWT_PUBLIC_KEY"),
        (
            {
                "INTERNAL_API_KEY": "k",
                "JWT_ALGORITHM": "HS256",
                "JWT_SECRET": SECRET,
                "PORT": "abc",
            },
            "PORT",
        ),
        (
            {
                "INTERNAL_API_KEY": "k",
                "JWT_ALGORITHM": "HS256",
                "JWT_SECRET": SECRET,
                "DATABASE_URL": "mysql://x",
            },
            "DATABASE_URL",
        ),
    ],
    ids=["no-api-key", "rs256-no-key", "hs256-no-secret", "es256", "garbage-key", "port", "db"],
)
def test_serve_with_bad_config_exits_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    variable: str,
) -> None:
    set_env(monkeypatch, **env)
    assert main(["serve"]) == 2
    assert variable in one_stderr_line(capsys)


def test_token_with_bad_config_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_env(monkeypatch, JWT_ALGORITHM="HS256")
    assert main(["token", "--sub", "u"]) == 2
    assert "JWT_SECRET" in one_stderr_line(capsys)


def test_token_prints_a_valid_hs256_jwt(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # INTERNAL_API_KEY is not needed to print a token.
    set_env(monkeypatch, JWT_ALGORITHM="HS256", JWT_SECRET=SECRET)
    assert main(["token", "--sub", "u-42", "--ttl", "120"]) == 0
    token = capsys.readouterr().out.strip()
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "u-42"
    assert claims["exp"] - claims["iat"] == 120
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    hs256_env(monkeypatch)
    assert JWTVerifier(load_settings(_env_file=None)).verify(token).id == "u-42"


def test_token_carries_configured_issuer_and_audience(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hs256_env(monkeypatch, JWT_ISSUER="https://auth.test", JWT_AUDIENCE="orders")
    assert main(["token", "--sub", "u"]) == 0
    token = capsys.readouterr().out.strip()
    assert JWTVerifier(load_settings(_env_file=None)).verify(token).id == "u"


def test_token_in_rs256_mode_needs_a_private_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_env(monkeypatch, JWT_ALGORITHM="RS256", JWT_PUBLIC_KEY=PUBLIC_PEM)
    assert main(["token", "--sub", "u"]) == 2
    assert "--private-key" in one_stderr_line(capsys)


def test_token_in_rs256_mode_with_private_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    key_file = tmp_path / "private.pem"
    key_file.write_text(PRIVATE_PEM)
    set_env(
        monkeypatch,
        INTERNAL_API_KEY="k",
        JWT_ALGORITHM="RS256",
        JWT_PUBLIC_KEY=PUBLIC_PEM.replace("\n", "\\n"),
    )
    assert main(["token", "--sub", "rsa-user", "--private-key", str(key_file)]) == 0
    token = capsys.readouterr().out.strip()
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert JWTVerifier(load_settings(_env_file=None)).verify(token).id == "rsa-user"


@pytest.mark.parametrize("url", ["mysql://u@db/orders", "garbage", "postgresql://u@db/orders"])
def test_migrate_with_bad_database_url_exits_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    # migrate needs only the database: no JWT or API key settings here.
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["migrate"]) == 2
    assert "DATABASE_URL" in one_stderr_line(capsys)


def test_empty_issuer_and_audience_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # `JWT_ISSUER=` copied from .env.example must not make every token fail.
    monkeypatch.setenv("JWT_ISSUER", "")
    monkeypatch.setenv("JWT_AUDIENCE", "  ")
    settings = load_settings(
        internal_api_key="k", jwt_algorithm="HS256", jwt_secret="s", _env_file=None
    )
    assert settings.jwt_issuer is None
    assert settings.jwt_audience is None


def test_empty_do_token_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGITALOCEAN_API_TOKEN", "")
    settings = load_settings(
        internal_api_key="k", jwt_algorithm="HS256", jwt_secret="s", _env_file=None
    )
    assert settings.digitalocean_api_token is None


def test_migrate_against_an_unreachable_database_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Port 1 of loopback refuses connections.
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    assert main(["migrate"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "cannot reach the database (DATABASE_URL)" in err


def test_the_request_pool_is_split_between_reads_and_writes_on_postgresql() -> None:
    postgres = "postgresql+asyncpg://u@h/db"
    assert make_settings(postgres, database_pool_size=20).request_pool_split == (10, 10)
    assert make_settings(postgres, database_pool_size=5).request_pool_split == (2, 3)
    # Never an empty pool: one connection each, one over the setting.
    assert make_settings(postgres, database_pool_size=1).request_pool_split == (1, 1)
    # SQLite: no read pool, every request uses a session.
    sqlite = "sqlite+aiosqlite:///./x.db"
    assert make_settings(sqlite, database_pool_size=20).request_pool_split == (0, 20)
