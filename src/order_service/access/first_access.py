"""First access without SSH keys: a random root password set at first boot (SPEC section 14).

Pure: no I/O, no logging. The password and the user_data built from it are
secrets; callers keep them out of logs, events, webhooks and every API but
the owner's credentials endpoint, and store the password encrypted
(`secret_box`).
"""

from __future__ import annotations

import re
import secrets
import string

__all__ = ["ALPHABET", "PASSWORD_LENGTH", "cloud_init_user_data", "new_root_password"]

PASSWORD_LENGTH = 24
# Letters and digits without the look-alikes 0/O/o and 1/l/I: 56 characters, so a
# 24-character password has about 139 bits, and it reads back without doubt
# when someone has to type it into a console. Nothing a shell, YAML or chpasswd
# would treat specially (no quote, colon, "#", space or backslash).
ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "0Oo1lI")
_SAFE_PASSWORD = re.compile(rf"[{re.escape(ALPHABET)}]{{20,128}}")
# DigitalOcean refuses user_data over 64 KiB; this document is under 300 bytes.
MAX_USER_DATA_BYTES = 64 * 1024


def new_root_password(length: int = PASSWORD_LENGTH) -> str:
    """A random password from `secrets`: `length` (≥ 20) characters of ALPHABET,
    with at least one lower-case letter, one upper-case letter and one digit
    (so it passes the usual password rules, and YAML never reads it as a number)."""
    if length < 20:
        raise ValueError("a root password has at least 20 characters")
    while True:
        password = "".join(secrets.choice(ALPHABET) for _ in range(length))
        if (
            any(c.islower() for c in password)
            and any(c.isupper() for c in password)
            and any(c.isdigit() for c in password)
        ):
            return password


def cloud_init_user_data(password: str) -> str:
    """A `#cloud-config` document that sets root's password at first boot and allows
    SSH password logins.

    `chpasswd.users` is cloud-init's form since 22.2; the `list` line says the same
    for older images, which know only that one (newer ones accept both and set
    the same password). `expire: false`: the customer is not forced to change it
    at the first login. Only passwords of ALPHABET are accepted (ValueError
    otherwise, naming no character of it), so nothing can escape the YAML.
    """
    if not _SAFE_PASSWORD.fullmatch(password):
        raise ValueError("the password must be 20-128 characters of first_access.ALPHABET")
    document = (
        "#cloud-config\n"
        "ssh_pwauth: true\n"
        "chpasswd:\n"
        "  expire: false\n"
        "  users:\n"
        "    - name: root\n"
        f'      password: "{password}"\n'
        "      type: text\n"
        "  list: |\n"
        f"    root:{password}\n"
    )
    return document
