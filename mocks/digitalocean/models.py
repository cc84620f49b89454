"""The fake's model objects (pure Python, no HTTP, no state).

Droplets, actions and SSH keys render themselves in DO's JSON shapes;
``ApiError`` is an error answer in DO's ``{"id", "message"}`` shape. Request
bodies are validated in ``parsing.py``.
"""

from __future__ import annotations

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

MINUTE_S = 60.0
HOUR_S = 3600.0

NOT_FOUND_MESSAGE = "The resource you were accessing could not be found."
TRANSIENT_422_MESSAGE = "Droplet creation is temporarily unavailable, please try again later."
PERMANENT_422_MESSAGE = "You specified an invalid size for Droplet creation."
PENDING_EVENT_MESSAGE = "Droplet already has a pending event."
DROPLET_LIMIT_MESSAGE = "creating this/these droplet(s) will exceed your droplet limit"
KEY_IN_USE_MESSAGE = "SSH Key is already in use on your account"


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
    account: str  # the account that created it: the only one that can see it
    ssh_keys: tuple[str, ...] = ()  # fingerprints given at creation (not in the JSON)
    user_data: str | None = None  # not in the JSON either, as on DO
    status: str = "new"
    # The disk it has now (GB): its size's disk at creation, then only grown by a
    # resize with disk true. -1 until __post_init__ fills it in.
    disk: int = -1
    # Rendered JSON, rebuilt only when the status changes: listings of up to 200
    # droplets per page stay cheap. Callers must treat it as read-only.
    json_cache: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.disk < 0:
            self.disk = size_spec(self.size)[2]

    def set_status(self, status: str) -> None:
        self.status = status
        self.json_cache = None

    def resize(self, size: str, *, disk: bool) -> None:
        """The new size's CPU and RAM; its disk too only when ``disk`` (a disk never shrinks)."""
        self.size = size
        if disk:
            self.disk = max(self.disk, size_spec(size)[2])
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
        memory, vcpus, _ = size_spec(self.size)
        return {
            "id": self.id,
            "name": self.name,
            "memory": memory,
            "vcpus": vcpus,
            "disk": self.disk,
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
    account: str  # its droplet's account: the only one that can read it
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
class SshKey:
    """A public key stored in one account (GET/POST /v2/account/keys)."""

    id: int
    fingerprint: str
    public_key: str
    name: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "fingerprint": self.fingerprint,
            "public_key": self.public_key,
            "name": self.name,
        }
