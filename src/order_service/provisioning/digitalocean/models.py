"""What the client returns: DigitalOcean's JSON objects flattened into small dataclasses.

The parsers are tolerant of missing optional fields (DigitalOcean leaves many
out while a droplet is still being built); only a missing or non-numeric ``id``
(or an object that is not an object) is an error, since without it the result
is useless. The client turns those errors into a ``DigitalOceanError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

__all__ = [
    "DROPLET_ACTION_TYPES",
    "Account",
    "AccountKey",
    "CreatedDroplet",
    "Droplet",
    "DropletAction",
    "Region",
    "Size",
]

#: The droplet action types the service sends (``POST /v2/droplets/{id}/actions``).
DROPLET_ACTION_TYPES: Final = frozenset(
    {"reboot", "shutdown", "power_off", "power_on", "rebuild", "resize"}
)


def _slug(value: Any) -> str | None:
    """DigitalOcean nests slugs (``{"slug": ...}``) but some fields are plain strings."""
    if isinstance(value, Mapping):
        value = value.get("slug")
    return value if isinstance(value, str) and value else None


def _image_ref(value: Any) -> str | None:
    """Image slug, or the numeric id for snapshots/custom images that have no slug."""
    if isinstance(value, Mapping) and value.get("slug") is None and value.get("id") is not None:
        return str(value["id"])
    return _slug(value)


def _ipv4(raw: Mapping[str, Any], kind: str) -> str | None:
    """First IPv4 address of the given type ("public"/"private"), if any."""
    networks = raw.get("networks")
    v4 = networks.get("v4") if isinstance(networks, Mapping) else None
    if not isinstance(v4, list):
        return None
    for entry in v4:
        if isinstance(entry, Mapping) and entry.get("type") == kind and entry.get("ip_address"):
            return str(entry["ip_address"])
    return None


def _parse_timestamp(value: Any) -> datetime | None:
    """ISO-8601 to an aware UTC datetime; unparseable means unknown, not an error."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _parse_id(value: Any) -> int:
    """Droplet/action ids are integers; anything else is a malformed answer."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"invalid id: {value!r}")
    return int(value)


def _optional_id(value: Any) -> int | None:
    """An id that may be absent; a present but garbled one counts as absent too."""
    try:
        return _parse_id(value)
    except (TypeError, ValueError):
        return None


def _require_object(raw: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise TypeError(f"{what} is a {type(raw).__name__}, not an object")
    return raw


@dataclass(frozen=True, slots=True)
class Droplet:
    """The fields of a droplet the service cares about, flattened.

    ``status`` is DigitalOcean's: ``new``, ``active``, ``off``, ``archive``
    (and ``errored`` for a droplet that came up broken).
    """

    id: int
    name: str
    status: str
    region: str | None
    size: str | None
    image: str | None
    ipv4_public: str | None
    ipv4_private: str | None
    tags: tuple[str, ...]
    created_at: datetime | None  # tz-aware UTC

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> Droplet:
        """Build from a ``droplet`` object of the API.

        Tolerant of missing optional fields (a droplet that is still ``new`` has
        no networks yet); only a missing or non-numeric ``id`` (or a droplet
        that is not an object) is an error, since without it the droplet is
        useless.
        """
        raw = _require_object(raw, "droplet")
        raw_tags = raw.get("tags")
        tags = tuple(str(t) for t in raw_tags) if isinstance(raw_tags, list) else ()
        return cls(
            id=_parse_id(raw["id"]),
            name=str(raw.get("name") or ""),
            status=str(raw.get("status") or "unknown"),
            region=_slug(raw.get("region")),
            size=_slug(raw.get("size_slug")) or _slug(raw.get("size")),
            image=_image_ref(raw.get("image")),
            ipv4_public=_ipv4(raw, "public"),
            ipv4_private=_ipv4(raw, "private"),
            tags=tags,
            created_at=_parse_timestamp(raw.get("created_at")),
        )


@dataclass(frozen=True, slots=True)
class CreatedDroplet:
    """A droplet DigitalOcean accepted (202): not built yet - poll the create action."""

    droplet: Droplet
    create_action_id: int | None


@dataclass(frozen=True, slots=True)
class DropletAction:
    """One DigitalOcean action (``create``, ``reboot``, ``rebuild``, ...), flattened.

    ``status`` is ``in-progress``, ``completed`` or ``errored``. ``resource_id``
    is the droplet's id for droplet actions.
    """

    id: int
    type: str
    status: str
    started_at: datetime | None  # tz-aware UTC
    completed_at: datetime | None  # tz-aware UTC
    resource_id: int | None

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> DropletAction:
        """Build from an ``action`` object of the API.

        ``id`` and ``status`` are required: an action whose status is unknown
        cannot be followed, so a missing one is a malformed answer (the caller
        sees a ``DigitalOceanError`` and asks again), not a guess.
        """
        raw = _require_object(raw, "action")
        status = raw.get("status")
        if not isinstance(status, str) or not status:
            raise ValueError(f"action status is {status!r}")
        return cls(
            id=_parse_id(raw["id"]),
            type=str(raw.get("type") or "unknown"),
            status=status,
            started_at=_parse_timestamp(raw.get("started_at")),
            completed_at=_parse_timestamp(raw.get("completed_at")),
            resource_id=_optional_id(raw.get("resource_id")),
        )


@dataclass(frozen=True, slots=True)
class Account:
    """``GET /v2/account``: how many droplets the account may hold, and its standing."""

    droplet_limit: int
    status: str

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> Account:
        raw = _require_object(raw, "account")
        limit = raw["droplet_limit"]
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"droplet_limit is {limit!r}")
        return cls(droplet_limit=limit, status=str(raw.get("status") or "unknown"))


@dataclass(frozen=True, slots=True)
class AccountKey:
    """An SSH key held by the account (``/v2/account/keys``)."""

    id: int
    fingerprint: str
    name: str

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> AccountKey:
        raw = _require_object(raw, "ssh_key")
        fingerprint = raw.get("fingerprint")
        if not isinstance(fingerprint, str) or not fingerprint:
            raise ValueError(f"fingerprint is {fingerprint!r}")
        return cls(
            id=_parse_id(raw["id"]), fingerprint=fingerprint, name=str(raw.get("name") or "")
        )


def _slugs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(item for item in value if isinstance(item, str) and item)


@dataclass(frozen=True, slots=True)
class Region:
    """One of ``GET /v2/regions``: its sizes are the slugs it offers."""

    slug: str
    name: str
    available: bool
    sizes: tuple[str, ...]

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> Region:
        raw = _require_object(raw, "region")
        slug = _slug(raw.get("slug"))
        if slug is None:
            raise ValueError("region without a slug")
        return cls(
            slug=slug,
            name=str(raw.get("name") or slug),
            available=raw.get("available") is True,
            sizes=_slugs(raw.get("sizes")),
        )


@dataclass(frozen=True, slots=True)
class Size:
    """One of ``GET /v2/sizes``: its disk (GB) and the regions that offer it."""

    slug: str
    disk: int
    memory: int
    vcpus: int
    available: bool
    regions: tuple[str, ...]

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> Size:
        raw = _require_object(raw, "size")
        slug = _slug(raw.get("slug"))
        if slug is None:
            raise ValueError("size without a slug")
        return cls(
            slug=slug,
            disk=int(raw.get("disk") or 0),
            memory=int(raw.get("memory") or 0),
            vcpus=int(raw.get("vcpus") or 0),
            available=raw.get("available") is True,
            regions=_slugs(raw.get("regions")),
        )
