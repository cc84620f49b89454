"""The server's host name as SPEC section 14 allows it. Pure.

1-253 characters; labels of 1-63 letters, digits and "-" (not first or last),
separated by "."; stored lower-case. It becomes the droplet's name, and DO adds a
reverse DNS record when it is a full domain name.
"""

from __future__ import annotations

import re

__all__ = ["MAX_HOSTNAME_LENGTH", "normalize_hostname"]

MAX_HOSTNAME_LENGTH = 253
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def normalize_hostname(value: str) -> str:
    """The host name in lower case, or ValueError saying (in a customer's words) why not."""
    if not value.isascii():
        # Checked before lower(): some letters lower-case to ASCII ones (KELVIN SIGN -> "k").
        raise ValueError("labels hold only letters, digits and '-' (ASCII)")
    name = value.lower()
    if not name:
        raise ValueError("a host name needs at least one character")
    if len(name) > MAX_HOSTNAME_LENGTH:
        raise ValueError(f"a host name has at most {MAX_HOSTNAME_LENGTH} characters")
    for label in name.split("."):
        if not label:
            raise ValueError("a host name has no empty label (no leading, trailing or double '.')")
        if len(label) > 63:
            raise ValueError("each label (between dots) has at most 63 characters")
        if not _LABEL.fullmatch(label):
            raise ValueError(
                "labels hold only letters, digits and '-', and do not start or end with '-'"
            )
    return name
