"""One OpenSSH public key line, checked and fingerprinted (SPEC section 14). Pure.

`cryptography` parses the key; this module only decides which keys are
accepted and computes DigitalOcean's fingerprint: the MD5 of the key blob
(the base64-decoded second field), as lower-case hex pairs joined by ":",
which is what `ssh-keygen -l -E md5` prints after "MD5:".

The stored line is the canonical `<type> <base64>` without the comment: the
key's name is its label, and the comment (free text) is not needed to log in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_ssh_public_key,
)

from order_service.errors import InvalidSshKey

__all__ = ["ACCEPTED_TYPES", "MIN_RSA_BITS", "PublicKey", "md5_fingerprint", "parse_public_key"]

MIN_RSA_BITS = 2048
ACCEPTED_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
)
# A 16384-bit RSA key, the largest OpenSSH makes, is about 2,800 characters.
MAX_LINE_CHARS = 8192
_ACCEPTED = "ssh-ed25519, ecdsa-sha2-nistp256/384/521, or ssh-rsa of at least 2048 bits"


@dataclass(frozen=True, slots=True)
class PublicKey:
    type: str  # the OpenSSH key type, e.g. "ssh-ed25519"
    public_key: str  # "<type> <base64>", no comment
    fingerprint: str  # "aa:bb:…" (16 pairs), DigitalOcean's form
    bits: int


def _refuse(reason: str) -> InvalidSshKey:
    return InvalidSshKey(f"Not an accepted SSH public key: {reason}", details={"reason": reason})


def md5_fingerprint(blob: bytes) -> str:
    """DigitalOcean's fingerprint of a key blob: MD5, hex pairs joined by ":"."""
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def parse_public_key(text: str) -> PublicKey:
    """The key on `text` (one line: type, base64, optional comment), or `InvalidSshKey`.

    `details.reason` says, in words a customer understands, why a key is refused.
    """
    line = text.strip()
    if not line:
        raise _refuse("the key is empty")
    if "PRIVATE KEY" in line:
        raise _refuse(
            "this is a private key; paste the public key (the .pub file) and keep this one secret"
        )
    if len(line.splitlines()) > 1:
        raise _refuse("one key per entry: the text has more than one line")
    if len(line) > MAX_LINE_CHARS:
        raise _refuse(f"the key is longer than {MAX_LINE_CHARS} characters")
    fields = line.split()
    key_type = fields[0]
    if key_type == "ssh-dss":
        raise _refuse(f"DSA keys (ssh-dss) are not accepted; use {_ACCEPTED}")
    if key_type not in ACCEPTED_TYPES:
        raise _refuse(
            f"not an OpenSSH public key line of an accepted type ({_ACCEPTED}), "
            "like 'ssh-ed25519 AAAA… comment'"
        )
    if len(fields) < 2:
        raise _refuse("the key's base64 part is missing")
    try:
        blob = base64.b64decode(fields[1], validate=True)
    except (binascii.Error, ValueError):
        raise _refuse("the key's second field is not valid base64") from None
    try:
        key = load_ssh_public_key(f"{key_type} {fields[1]}".encode("ascii"))
    except (ValueError, TypeError, NotImplementedError, UnsupportedAlgorithm):
        # NotImplementedError: e.g. an ECDSA key with a compressed point.
        raise _refuse(f"not a valid {key_type} key (damaged or cut off?)") from None
    bits = _bits(key)
    canonical = key.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode("ascii")
    # cryptography takes some blobs OpenSSH never writes (an RSA number with
    # leading zero bytes): their fingerprint would not be the stored key's.
    if base64.b64decode(canonical.split()[1]) != blob:
        raise _refuse(f"not a valid {key_type} key (not in OpenSSH's canonical encoding)")
    return PublicKey(
        type=key_type, public_key=canonical, fingerprint=md5_fingerprint(blob), bits=bits
    )


def _bits(key: object) -> int:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return 256
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.key_size
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise _refuse(
                f"an RSA key of {key.key_size} bits is too weak: at least {MIN_RSA_BITS} bits"
            )
        return key.key_size
    # The header names an accepted type and cryptography checks the body's agrees.
    raise _refuse(f"keys of this kind are not accepted; use {_ACCEPTED}")
