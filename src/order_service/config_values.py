"""How the settings' values are read: durations, lists, operator keys, origins, Fernet keys.

`config.py` declares the settings; the parsing of the values that are more
than a plain string or number lives here, each function raising a
`ConfigError` that names the variable (and an entry by its position, never
by its content: it may be a secret).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, NamedTuple

from cryptography.fernet import Fernet
from pydantic import AfterValidator, BeforeValidator, SecretStr
from pydantic_settings import NoDecode


class ConfigError(Exception):
    """A setting is missing or contradicts another; the message names the variable."""


def empty_is_unset(value: object) -> object:
    """`JWT_ISSUER=` in a .env file means "not set", not "must equal ''"."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


#: A text setting where an empty value means unset.
OptionalText = Annotated[str | None, BeforeValidator(empty_is_unset)]
OptionalSecret = Annotated[SecretStr | None, BeforeValidator(empty_is_unset)]


def unescape_newlines(value: object) -> object:
    """A PEM key passed through one env line arrives with literal "\\n"."""
    if isinstance(value, str):
        value = value.replace("\\n", "\n").strip()
        return value or None
    return value


def normalise_algorithm(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


def seconds_or_iso(value: object) -> object:
    """A duration from the environment: plain seconds ("90", "0.5") as a number,
    anything else as the ISO 8601 text pydantic reads ("P7D", "PT0.5S")."""
    if not isinstance(value, str):
        return value
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        return value


def split_durations(value: object) -> object:
    """ "P7D,P3D,P1D" from the environment; empty means none."""
    if isinstance(value, str):
        return tuple(seconds_or_iso(part) for part in value.split(",") if part.strip())
    return value


#: A duration setting: ISO 8601 (P7D, PT90S, PT0.5S) or a plain number of seconds.
Duration = Annotated[timedelta, BeforeValidator(seconds_or_iso)]
#: A comma-separated list of durations (NoDecode: not read as JSON by pydantic-settings).
DurationList = Annotated[tuple[timedelta, ...], NoDecode, BeforeValidator(split_durations)]


def format_duration(value: timedelta) -> str:
    """ISO 8601, the way the settings are written: P7D, PT30S, PT1H30M, PT0.5S."""
    total = value.total_seconds()
    sign = "-" if total < 0 else ""
    seconds = abs(total)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    date = f"{int(days)}D" if days else ""
    time = "".join(
        f"{number:g}{unit}"
        for number, unit in ((hours, "H"), (minutes, "M"), (seconds, "S"))
        if number
    )
    if not date and not time:
        return "PT0S"
    return f"{sign}P{date}" + (f"T{time}" if time else "")


class OperatorKey(NamedTuple):
    """One accepted X-API-Key: `name` is None for INTERNAL_API_KEY."""

    name: str | None
    key: bytes


_KEY_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_ORIGIN = re.compile(r"https?://[^/\s,]+")
_REGION_SLUG = re.compile(r"[a-z0-9]{2,16}")


def parse_operator_keys(single: str, named: str) -> tuple[OperatorKey, ...]:
    """INTERNAL_API_KEY (`single`, no name) and each `name=key` entry of INTERNAL_API_KEYS."""
    keys = []
    if single:
        keys.append(OperatorKey(None, single.encode()))
    names: set[str] = set()
    # Messages name the entry by position, never by content: it may be a key.
    for position, entry in enumerate(named.split(","), start=1):
        entry = entry.strip()
        if not entry and not named.strip():
            break  # set but empty: no named keys
        name, sep, key = entry.partition("=")  # a key may contain "=" (base64)
        name, key = name.strip(), key.strip()
        if not sep or not name or not key:
            raise ConfigError(f"INTERNAL_API_KEYS: entry {position} is not name=key")
        if not _KEY_NAME.fullmatch(name):
            raise ConfigError(
                f"INTERNAL_API_KEYS: entry {position}: a name is 1-64 of A-Z a-z 0-9 . _ -"
            )
        if name in names:
            raise ConfigError(f"INTERNAL_API_KEYS: the name {name!r} is used twice")
        names.add(name)
        keys.append(OperatorKey(name, key.encode()))
    if len({k.key for k in keys}) != len(keys):
        raise ConfigError(
            "INTERNAL_API_KEYS: two keys are the same (with each other or INTERNAL_API_KEY)"
        )
    return tuple(keys)


def parse_cors_origins(raw: str) -> tuple[str, ...]:
    """CORS_ORIGINS as a tuple (empty: no cross-origin access)."""
    origins = []
    for origin in raw.split(","):
        # A browser's Origin has no path and no trailing slash: accept the slash.
        origin = origin.strip().rstrip("/")
        if not origin:
            continue
        if origin != "*" and not _ORIGIN.fullmatch(origin):
            raise ConfigError(
                f"CORS_ORIGINS: {origin!r} is not an origin like http://localhost:4200"
            )
        origins.append(origin)
    return tuple(origins)


def parse_secret_keys(raw: str) -> tuple[bytes, ...]:
    """SECRETS_KEY as Fernet keys, first (the encrypting one) first; empty when unset."""
    keys = []
    for position, entry in enumerate(raw.split(","), start=1):
        entry = entry.strip()
        if not entry:
            continue
        try:
            Fernet(entry.encode())
        except (ValueError, TypeError):
            raise ConfigError(
                f"SECRETS_KEY: entry {position} is not a Fernet key "
                "(32 bytes, url-safe base64: Fernet.generate_key())"
            ) from None
        keys.append(entry.encode())
    return tuple(keys)


def split_regions(value: object) -> object:
    """DIGITALOCEAN_REGIONS from the environment: comma-separated, lower-cased."""
    if isinstance(value, str):
        return tuple(part.strip().lower() for part in value.split(",") if part.strip())
    return value


def check_regions(value: tuple[str, ...]) -> tuple[str, ...]:
    """Each entry a region slug like sgp1; sorted, without repeats."""
    for slug in value:
        if not _REGION_SLUG.fullmatch(slug):
            raise ConfigError(f"DIGITALOCEAN_REGIONS: {slug!r} is not a region slug like sgp1")
    return tuple(sorted(set(value)))


#: DIGITALOCEAN_REGIONS: comma-separated region slugs.
RegionList = Annotated[
    tuple[str, ...], NoDecode, BeforeValidator(split_regions), AfterValidator(check_regions)
]
