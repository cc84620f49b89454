"""The fake's model objects and request parsing (pure Python, no HTTP, no state).

Droplets and actions render themselves in DO's JSON shapes; ``ApiError`` is
an error answer in DO's ``{"id", "message"}`` shape; the parsers validate
request bodies the way DO does for the fields the fake models.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mocks.digitalocean.catalogue import (
    image_json,
    iso8601,
    private_ipv4,
    public_ipv4,
    region_json,
    size_json,
    size_spec,
    vpc_uuid,
)
from mocks.digitalocean.config import ACTION_TYPES, ActionType

MINUTE_S = 60.0
HOUR_S = 3600.0

NOT_FOUND_MESSAGE = "The resource you were accessing could not be found."
TRANSIENT_422_MESSAGE = "Droplet creation is temporarily unavailable, please try again later."
PERMANENT_422_MESSAGE = "You specified an invalid size for Droplet creation."
PENDING_EVENT_MESSAGE = "Droplet already has a pending event."

# DO's documented rules: hostnames for droplet names, a restricted alphabet for tags.
_NAME_RE = re.compile(r"^[A-Za-z0-9.\-]{1,255}$")
_TAG_RE = re.compile(r"^[A-Za-z0-9:_\-]{1,255}$")


class ApiError(Exception):
    """An error answer in DO's ``{"id", "message"}`` shape."""

    def __init__(
        self,
        status: int,
        error_id: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {error_id}: {message}")
        self.status = status
        self.error_id = error_id
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})

    @property
    def body(self) -> dict[str, str]:
        return {"id": self.error_id, "message": self.message}


def not_found() -> ApiError:
    return ApiError(404, "not_found", NOT_FOUND_MESSAGE)


def unprocessable(message: str) -> ApiError:
    return ApiError(422, "unprocessable_entity", message)


@dataclass(slots=True)
class Droplet:
    id: int
    name: str
    region: str
    size: str
    image: str | int
    tags: tuple[str, ...]
    monitoring: bool
    created_wall: float
    seq: int  # allocation index for the addresses
    action_id: int
    status: str = "new"
    # Rendered JSON, rebuilt only when the status changes: listings of up to 200
    # droplets per page stay cheap. Callers must treat it as read-only.
    json_cache: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def set_status(self, status: str) -> None:
        self.status = status
        self.json_cache = None

    def set_image(self, image: str | int) -> None:
        self.image = image
        self.json_cache = None

    def networks(self) -> dict[str, list[dict[str, str]]]:
        # DO only reports addresses once the droplet is up.
        if self.status != "active":
            return {"v4": [], "v6": []}
        public, public_gw = public_ipv4(self.seq)
        private, private_gw = private_ipv4(self.seq)
        mask = "255.255.255.0"
        return {
            "v4": [
                {"ip_address": public, "netmask": mask, "gateway": public_gw, "type": "public"},
                {"ip_address": private, "netmask": mask, "gateway": private_gw, "type": "private"},
            ],
            "v6": [],
        }

    def to_json(self) -> dict[str, Any]:
        if self.json_cache is None:
            self.json_cache = self._render()
        return self.json_cache

    def _render(self) -> dict[str, Any]:
        memory, vcpus, disk = size_spec(self.size)
        return {
            "id": self.id,
            "name": self.name,
            "memory": memory,
            "vcpus": vcpus,
            "disk": disk,
            "locked": False,
            "status": self.status,
            "kernel": None,
            "created_at": iso8601(self.created_wall),
            "features": ["monitoring"] if self.monitoring else [],
            "backup_ids": [],
            "next_backup_window": None,
            "snapshot_ids": [],
            "image": image_json(self.image),
            "volume_ids": [],
            "size": size_json(self.size),
            "size_slug": self.size,
            "networks": self.networks(),
            "region": region_json(self.region),
            "tags": list(self.tags),
            "vpc_uuid": vpc_uuid(self.region),
        }


@dataclass(slots=True)
class Action:
    """A DO action: the ``create`` of a droplet, or a droplet action (reboot, ...)."""

    id: int
    droplet_id: int
    region: str
    started_wall: float
    type: str = "create"
    status: str = "in-progress"
    completed_wall: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "type": self.type,
            "started_at": iso8601(self.started_wall),
            "completed_at": None if self.completed_wall is None else iso8601(self.completed_wall),
            "resource_id": self.droplet_id,
            "resource_type": "droplet",
            "region": region_json(self.region),
            "region_slug": self.region,
        }


@dataclass(slots=True)
class RateWindow:
    """Arrival times (monotonic) of the counted requests of one token."""

    minute: deque[float] = field(default_factory=deque)
    hour: deque[float] = field(default_factory=deque)

    def prune(self, now: float) -> None:
        # Half-open window (now - span, now]: a request expires exactly span later.
        minute, hour = self.minute, self.hour
        while minute and minute[0] <= now - MINUTE_S:
            minute.popleft()
        while hour and hour[0] <= now - HOUR_S:
            hour.popleft()

    def record(self, now: float) -> None:
        self.minute.append(now)
        self.hour.append(now)


@dataclass(slots=True)
class CreateRequest:
    name: str
    region: str
    size: str
    image: str | int
    tags: tuple[str, ...]
    monitoring: bool


def _required_string(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise unprocessable(f"{key} is required and must be a non-empty string.")
    return value


def parse_create_request(payload: Any) -> CreateRequest:
    """Validate a POST /v2/droplets body the way DO does for the fields we model."""
    if not isinstance(payload, dict):
        raise unprocessable("The request body must be a JSON object.")
    name = _required_string(payload, "name")
    if not _NAME_RE.match(name):
        raise unprocessable("Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)")
    region = _required_string(payload, "region")
    size = _required_string(payload, "size")
    image = payload.get("image")
    # DO also accepts a numeric image id; bool is an int subclass, so exclude it.
    if isinstance(image, bool) or not isinstance(image, str | int) or image == "":
        raise unprocessable("image is required and must be a non-empty string.")
    return CreateRequest(
        name=name,
        region=region,
        size=size,
        image=image,
        tags=_parse_tags(payload.get("tags")),
        monitoring=_parse_monitoring(payload.get("monitoring")),
    )


def _parse_tags(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(tag, str) for tag in raw):
        raise unprocessable("tags must be a list of strings.")
    for tag in raw:
        if not _TAG_RE.match(tag):
            raise unprocessable(
                "Tag names may contain letters, numbers, colons, dashes, and underscores "
                "and are limited to 255 characters."
            )
    return tuple(dict.fromkeys(raw))  # dedupe, keep order


def _parse_monitoring(raw: Any) -> bool:
    if raw is None:
        return False
    if not isinstance(raw, bool):
        raise unprocessable("monitoring must be a boolean.")
    return raw


def parse_bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


@dataclass(slots=True)
class ActionRequest:
    type: ActionType
    image: str | int | None  # DO accepts a slug or a numeric image id


def parse_action_request(payload: Any) -> ActionRequest:
    """Validate a POST /v2/droplets/{id}/actions body for the action types the fake models."""
    if not isinstance(payload, dict):
        raise unprocessable("The request body must be a JSON object.")
    kind = payload.get("type")
    if kind not in ACTION_TYPES:
        raise unprocessable(f"Type {kind!r} is not a supported droplet action.")
    image = payload.get("image")
    if kind != "rebuild":
        return ActionRequest(type=kind, image=None)
    # bool is an int subclass, so exclude it.
    if isinstance(image, bool) or not isinstance(image, str | int) or image == "":
        raise unprocessable("image is required to rebuild a Droplet.")
    return ActionRequest(type=kind, image=image)
