"""One OpenSSH public key line: accepted types, refusals, and DigitalOcean's MD5 fingerprint.

Every key is made here with `cryptography` (no key is committed); the
fingerprint is checked against `ssh-keygen -l -E md5` and against hashlib.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import shutil
import struct
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa

from order_service.access.keys import md5_fingerprint, parse_public_key
from order_service.access.schemas import EXAMPLE_FINGERPRINT, EXAMPLE_PUBLIC_KEY
from order_service.errors import InvalidSshKey

SSH_KEYGEN = shutil.which("ssh-keygen")
OPENSSH = serialization.Encoding.OpenSSH
OPENSSH_PUBLIC = serialization.PublicFormat.OpenSSH
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

MAKERS: dict[str, Callable[[], PrivateKey]] = {
    "ed25519": ed25519.Ed25519PrivateKey.generate,
    "ecdsa-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ecdsa-p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "ecdsa-p521": lambda: ec.generate_private_key(ec.SECP521R1()),
    "rsa-2048": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "rsa-4096": lambda: rsa.generate_private_key(public_exponent=65537, key_size=4096),
    # Weak on purpose: the key the service must refuse.
    "rsa-1024": lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024),  # noqa: S505
}
ACCEPTED = {
    "ed25519": ("ssh-ed25519", 256),
    "ecdsa-p256": ("ecdsa-sha2-nistp256", 256),
    "ecdsa-p384": ("ecdsa-sha2-nistp384", 384),
    "ecdsa-p521": ("ecdsa-sha2-nistp521", 521),
    "rsa-2048": ("ssh-rsa", 2048),
    "rsa-4096": ("ssh-rsa", 4096),
}


@functools.cache
def private_key(kind: str) -> PrivateKey:
    return MAKERS[kind]()


@functools.cache
def public_line(kind: str) -> str:
    return private_key(kind).public_key().public_bytes(OPENSSH, OPENSSH_PUBLIC).decode()


def hashlib_fingerprint(line: str) -> str:
    """Computed here, apart from the module: MD5 of the base64-decoded second field."""
    digest = hashlib.md5(base64.b64decode(line.split()[1]), usedforsecurity=False).digest()
    return ":".join(f"{byte:02x}" for byte in digest)


def ssh_keygen_fingerprint(line: str, tmp_path: Path) -> str:
    path = tmp_path / "key.pub"
    path.write_text(line + "\n")
    out = subprocess.run(  # noqa: S603 - a fixed binary on a file of our own
        [SSH_KEYGEN or "ssh-keygen", "-l", "-E", "md5", "-f", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found = re.search(r"MD5:((?:[0-9a-f]{2}:){15}[0-9a-f]{2})", out)
    assert found, out
    return found.group(1)


def reason_of(text: str) -> str:
    with pytest.raises(InvalidSshKey) as refused:
        parse_public_key(text)
    assert refused.value.code == "INVALID_SSH_KEY" and refused.value.status_code == 400
    details = refused.value.details
    assert details is not None
    assert details["reason"] in refused.value.message
    return details["reason"]


# ------------------------------------------------------------------ accepted


@pytest.mark.parametrize("kind", list(ACCEPTED))
def test_accepted_keys_and_their_fingerprint(kind: str, tmp_path: Path) -> None:
    line = public_line(kind)
    parsed = parse_public_key(f"{line} ani@laptop\n")
    key_type, bits = ACCEPTED[kind]
    assert parsed.type == key_type
    assert parsed.bits == bits
    assert parsed.public_key == line  # canonical "<type> <base64>", the comment not kept
    assert re.fullmatch(r"(?:[0-9a-f]{2}:){15}[0-9a-f]{2}", parsed.fingerprint)
    assert parsed.fingerprint == hashlib_fingerprint(line)
    if SSH_KEYGEN is None:
        pytest.skip("ssh-keygen is not installed: checked against hashlib only")
    assert parsed.fingerprint == ssh_keygen_fingerprint(f"{line} ani@laptop", tmp_path)


def test_the_comment_and_surrounding_blanks_change_nothing() -> None:
    line = public_line("ed25519")
    plain = parse_public_key(line)
    assert parse_public_key(f"  {line}   a comment with spaces \r\n") == plain
    assert parse_public_key(line.replace(" ", "\t")) == plain


def test_the_documented_example_is_honest() -> None:
    assert parse_public_key(EXAMPLE_PUBLIC_KEY).fingerprint == EXAMPLE_FINGERPRINT


def test_md5_fingerprint_form() -> None:
    assert md5_fingerprint(b"") == "d4:1d:8c:d9:8f:00:b2:04:e9:80:09:98:ec:f8:42:7e"


# ------------------------------------------------------------------ refused


def test_rsa_below_2048_bits_is_too_weak() -> None:
    assert "1024 bits is too weak" in reason_of(public_line("rsa-1024"))


@pytest.mark.parametrize(
    "private_format",
    [
        serialization.PrivateFormat.OpenSSH,
        serialization.PrivateFormat.PKCS8,
        serialization.PrivateFormat.TraditionalOpenSSL,
    ],
    ids=["openssh", "pkcs8", "traditional"],
)
def test_a_private_key_is_refused_and_named(
    private_format: serialization.PrivateFormat,
) -> None:
    key = private_key("rsa-2048")
    pem = key.private_bytes(
        serialization.Encoding.PEM, private_format, serialization.NoEncryption()
    ).decode()
    assert "private key" in reason_of(pem)


def test_an_ed25519_private_key_is_refused() -> None:
    pem = private_key("ed25519").private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    assert "private key" in reason_of(pem.decode())


def test_a_dsa_key_is_refused() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cryptography deprecates SSH DSA keys, rightly
        key = dsa.generate_private_key(key_size=1024)  # noqa: S505 - the only size SSH has
        line = key.public_key().public_bytes(OPENSSH, OPENSSH_PUBLIC).decode()
    assert line.startswith("ssh-dss ")
    assert "DSA" in reason_of(line)


def test_two_keys_on_two_lines_are_refused() -> None:
    text = f"{public_line('ed25519')}\n{public_line('ecdsa-p256')}\n"
    assert "more than one line" in reason_of(text)
    assert "more than one line" in reason_of(public_line("ed25519") + "\u2028" + "x")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n",
        "garbage",
        "ssh-ed25519",
        "ssh-ed25519 !!!not-base64!!!",
        "ssh-ed25519 AAAA",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5",
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ",
        "-----BEGIN PUBLIC KEY-----",
        "---- BEGIN SSH2 PUBLIC KEY ----",
        "ssh-ed25519-cert-v01@openssh.com AAAA",
        "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t",
        'from="10.0.0.1" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5',
        "ssh-ed25519 AAAAC3Nza\x00C1lZDI1NTE5",
        "ssh-ed25519 " + "A" * 9000,
    ],
)
def test_garbage_is_refused_with_a_reason(text: str) -> None:
    assert reason_of(text)


def test_a_blob_of_another_type_than_its_header_is_refused() -> None:
    blob = public_line("rsa-2048").split()[1]
    assert reason_of(f"ssh-ed25519 {blob}")


def sshstr(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def test_bytes_after_the_key_are_refused() -> None:
    line = public_line("ed25519")
    blob = base64.b64decode(line.split()[1]) + b"\x00\x00\x00\x04junk"
    assert "not a valid ssh-ed25519 key" in reason_of(
        f"ssh-ed25519 {base64.b64encode(blob).decode()}"
    )
    # Text after the base64 padding (a P-256 blob is 104 bytes: one "="), not dropped.
    padded = public_line("ecdsa-p256")
    assert padded.endswith("=")
    assert "not valid base64" in reason_of(padded + "AAAA")


def test_a_key_openssh_would_not_write_is_refused() -> None:
    # cryptography loads an RSA exponent with a leading zero byte; its MD5
    # would not be the fingerprint of the key as stored (and as DO computes it).
    numbers = private_key("rsa-2048").public_key().public_numbers()
    blob = (
        sshstr(b"ssh-rsa")
        + sshstr(b"\x00\x01\x00\x01")
        + sshstr(b"\x00" + numbers.n.to_bytes(256, "big"))
    )
    reason = reason_of(f"ssh-rsa {base64.b64encode(blob).decode()}")
    assert "canonical" in reason


def test_an_ecdsa_key_with_a_compressed_point_is_refused() -> None:
    point = (
        private_key("ecdsa-p256")
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    )
    blob = sshstr(b"ecdsa-sha2-nistp256") + sshstr(b"nistp256") + sshstr(point)
    assert reason_of(f"ecdsa-sha2-nistp256 {base64.b64encode(blob).decode()}")
