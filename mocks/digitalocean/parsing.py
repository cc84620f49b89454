"""Validation of /v2 request bodies, the way DO does it for the fields the fake models.

Pure functions: each takes the decoded JSON and answers a small request object
or raises the 422 :class:`~mocks.digitalocean.models.ApiError` DO would send.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

from mocks.digitalocean.config import ACTION_TYPES, ActionType
from mocks.digitalocean.models import unprocessable

# DO's documented rules: hostnames for droplet names, a restricted alphabet for tags.
_NAME_RE = re.compile(r"^[A-Za-z0-9.\-]{1,255}$")
_TAG_RE = re.compile(r"^[A-Za-z0-9:_\-]{1,255}$")

#: DO's cap on user_data (cloud-init), in bytes of its UTF-8 text.
MAX_USER_DATA_BYTES = 64 * 1024
_MAX_KEY_NAME = 255
_KEY_INVALID_MESSAGE = "Key invalid, key should be of the format `type key [comment]`"


def _object(payload: Any) -> Mapping[str, Any]:
    if not isinstance(payload, dict):
        raise unprocessable("The request body must be a JSON object.")
    return payload


def _required_string(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise unprocessable(f"{key} is required and must be a non-empty string.")
    return value


def _image_ref(raw: Any) -> str | int | None:
    # DO also accepts a numeric image id; bool is an int subclass, so exclude it.
    if isinstance(raw, bool) or not isinstance(raw, str | int) or raw == "":
        return None
    return raw


# -- POST /v2/droplets -------------------------------------------------------------


@dataclass(slots=True)
class CreateRequest:
    name: str
    region: str
    size: str
    image: str | int
    tags: tuple[str, ...]
    monitoring: bool
    # Key ids (int) or fingerprints (str), resolved against the caller's account later.
    ssh_keys: tuple[int | str, ...] = ()
    user_data: str | None = None


def parse_create_request(payload: Any) -> CreateRequest:
    """Validate a POST /v2/droplets body."""
    body = _object(payload)
    name = _required_string(body, "name")
    if not _NAME_RE.match(name):
        raise unprocessable("Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)")
    region = _required_string(body, "region")
    size = _required_string(body, "size")
    image = _image_ref(body.get("image"))
    if image is None:
        raise unprocessable("image is required and must be a non-empty string.")
    return CreateRequest(
        name=name,
        region=region,
        size=size,
        image=image,
        tags=_parse_tags(body.get("tags")),
        monitoring=_parse_monitoring(body.get("monitoring")),
        ssh_keys=_parse_ssh_keys(body.get("ssh_keys")),
        user_data=_parse_user_data(body.get("user_data")),
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


def _parse_ssh_keys(raw: Any) -> tuple[int | str, ...]:
    if raw is None:
        return ()
    valid = isinstance(raw, list) and all(
        (isinstance(key, int) and not isinstance(key, bool)) or (isinstance(key, str) and key)
        for key in raw
    )
    if not valid:
        raise unprocessable("ssh_keys must be a list of SSH key ids or fingerprints.")
    return tuple(dict.fromkeys(raw))


def _parse_user_data(raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise unprocessable("user_data must be a string.")
    if len(raw.encode()) > MAX_USER_DATA_BYTES:
        raise unprocessable("user_data is too long: it is limited to 64 KiB.")
    return raw


def parse_bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


# -- POST /v2/droplets/{id}/actions ------------------------------------------------------


@dataclass(slots=True)
class ActionRequest:
    type: ActionType
    image: str | int | None = None  # rebuild: a slug or a numeric image id
    size: str | None = None  # resize: the new size slug
    disk: bool = False  # resize: grow the disk too (for good)


def parse_action_request(payload: Any) -> ActionRequest:
    """Validate a POST /v2/droplets/{id}/actions body for the action types the fake models."""
    body = _object(payload)
    kind = body.get("type")
    if kind not in ACTION_TYPES:
        raise unprocessable(f"Type {kind!r} is not a supported droplet action.")
    if kind == "rebuild":
        image = _image_ref(body.get("image"))
        if image is None:
            raise unprocessable("image is required to rebuild a Droplet.")
        return ActionRequest(type=kind, image=image)
    if kind == "resize":
        size = body.get("size")
        if not isinstance(size, str) or not size:
            raise unprocessable("size is required to resize a Droplet.")
        disk = body.get("disk", False)
        if not isinstance(disk, bool):
            raise unprocessable("disk must be a boolean.")
        return ActionRequest(type=kind, size=size, disk=disk)
    return ActionRequest(type=kind)


# -- POST /v2/account/keys ---------------------------------------------------------------


@dataclass(slots=True)
class KeyRequest:
    name: str
    public_key: str
    fingerprint: str


def parse_key_request(payload: Any) -> KeyRequest:
    """Validate a POST /v2/account/keys body; the key must parse as an OpenSSH public key."""
    body = _object(payload)
    name = _required_string(body, "name")
    if len(name) > _MAX_KEY_NAME:
        raise unprocessable(f"name is limited to {_MAX_KEY_NAME} characters.")
    public_key = _required_string(body, "public_key").strip()
    return KeyRequest(name=name, public_key=public_key, fingerprint=fingerprint_of(public_key))


def fingerprint_of(public_key: str) -> str:
    """DO's fingerprint of an OpenSSH public key line: MD5 of the key blob, as ``aa:bb:…``."""
    try:
        load_ssh_public_key(public_key.encode())
        blob = base64.b64decode(public_key.split()[1], validate=True)
    except (ValueError, UnsupportedAlgorithm, IndexError):
        raise unprocessable(
            "Key invalid, key should be of the format `type key [comment]`"
        ) from None
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
