"""The dev stack's settings: environment > `.env` > dev default > the service's default."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO_ROOT = Path(__file__).resolve().parents[2]

# Used for a variable that neither the environment nor `.env` sets.
DEV_DEFAULTS: dict[str, str] = {
    "HOST": "127.0.0.1",
    "JWT_ALGORITHM": "HS256",
    "JWT_SECRET": "dev-only-secret-change-me-0123456789",
    "INTERNAL_API_KEY": "dev-internal-key",
    "CATALOG_SERVICE_URL": "http://127.0.0.1:{catalog_port}",
    "DIGITALOCEAN_API_URL": "http://127.0.0.1:{do_port}",
    "DIGITALOCEAN_API_TOKEN": "fake-do-token",
    "PROVISIONING_POLL_INTERVAL_MS": "1000",
    "PROVISIONING_MAX_ATTEMPTS": "120",
    # DEV ONLY, public: a fixed Fernet key (base64 of "dev-only-fernet-key-not-secret!!")
    # so orders without SSH keys (a first-access password) work out of the box.
    "SECRETS_KEY": "ZGV2LW9ubHktZmVybmV0LWtleS1ub3Qtc2VjcmV0ISE=",
}
# The service's own defaults (SPEC section 2), shown when nothing else sets a variable.
SERVICE_DEFAULTS: dict[str, str] = {
    "DATABASE_URL": "sqlite+aiosqlite:///./order-service.db",
    "PORT": "3333",
    "LOG_FORMAT": "text",
}
SECRETS = frozenset(
    {"JWT_SECRET", "INTERNAL_API_KEY", "DIGITALOCEAN_API_TOKEN", "JWT_PUBLIC_KEY", "SECRETS_KEY"}
)
SHOWN = (
    "DATABASE_URL",
    "HOST",
    "PORT",
    "JWT_ALGORITHM",
    "JWT_SECRET",
    "JWT_PUBLIC_KEY",
    "INTERNAL_API_KEY",
    "CATALOG_SERVICE_URL",
    "DIGITALOCEAN_API_URL",
    "DIGITALOCEAN_API_TOKEN",
    "SECRETS_KEY",
    "PROVISIONING_POLL_INTERVAL_MS",
    "PROVISIONING_MAX_ATTEMPTS",
    "LOG_FORMAT",
)


@dataclass(frozen=True)
class Resolved:
    """One variable as the service will see it, and where its value comes from."""

    value: str | None
    source: str  # "environment", ".env", "dev default", "service default" or "unset"

    def display(self, name: str) -> str:
        if self.value is None:
            return "(unset)"
        if name in SECRETS and self.source in ("environment", ".env"):
            dev = DEV_DEFAULTS.get(name)
            return self.value if self.value == dev else "******** (hidden)"
        if name == "JWT_PUBLIC_KEY":
            return "(a PEM key)"
        if name == "DATABASE_URL":
            return redact_url(self.value)
        return self.value


@dataclass
class StackConfig:
    """The service's environment, and where each shown variable comes from."""

    child_env: dict[str, str]
    resolved: dict[str, Resolved]
    dotenv_path: Path
    dotenv_found: bool
    defaults_used: list[str] = field(default_factory=list)

    def get(self, name: str) -> str | None:
        return self.resolved[name].value


def read_dotenv(path: Path) -> dict[str, str]:
    """`.env` as pydantic-settings reads it (python-dotenv), keys upper-cased."""
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {key.upper(): value for key, value in dotenv_values(path).items() if value is not None}


def resolve_config(
    environ: Mapping[str, str],
    dotenv: Mapping[str, str],
    *,
    catalog_port: int,
    do_port: int,
    service_port: int | None = None,
    dotenv_path: Path | None = None,
) -> StackConfig:
    """Environment > `.env` > dev default > the service's own default.

    Values from `.env` are not copied into the child's environment: the service reads
    `.env` itself (it runs in the repository root), exactly as it would without us.
    """
    env = {key.upper(): value for key, value in environ.items()}
    child_env = dict(environ)
    if service_port is not None:
        child_env["PORT"] = str(service_port)
        env["PORT"] = str(service_port)
    defaults = {
        name: value.format(catalog_port=catalog_port, do_port=do_port)
        for name, value in DEV_DEFAULTS.items()
    }
    user_set = set(env) | set(dotenv)
    if "JWT_PUBLIC_KEY" in user_set and "JWT_ALGORITHM" not in user_set:
        # Someone configured RS256 (the service's default algorithm); don't switch it.
        defaults.pop("JWT_ALGORITHM")
    used = []
    for name, value in defaults.items():
        if name not in user_set:
            child_env[name] = value
            used.append(name)
    resolved = {}
    for name in SHOWN:
        if name in env:
            resolved[name] = Resolved(env[name], "environment")
        elif name in dotenv:
            resolved[name] = Resolved(dotenv[name], ".env")
        elif name in used:
            resolved[name] = Resolved(defaults[name], "dev default")
        elif name in SERVICE_DEFAULTS:
            resolved[name] = Resolved(SERVICE_DEFAULTS[name], "service default")
        else:
            resolved[name] = Resolved(None, "unset")
    path = dotenv_path or REPO_ROOT / ".env"
    return StackConfig(child_env, resolved, path, bool(dotenv) or path.is_file(), used)


def redact_url(url: str) -> str:
    """Hide the password of a database URL."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":****@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def describe_config(config: StackConfig) -> list[str]:
    if config.dotenv_found:
        head = f"{config.dotenv_path} found: its values are used unless the environment overrides"
    else:
        head = f"no {config.dotenv_path}: dev defaults fill in what the environment doesn't set"
    lines = [f"configuration ({head}):"]
    for name in SHOWN:
        item = config.resolved[name]
        if item.source == "unset":
            continue
        lines.append(f"  {name:<30} {item.display(name):<45} [{item.source}]")
    return lines
