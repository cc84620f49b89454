"""First access without keys: the random root password and the cloud-config that sets it."""

from __future__ import annotations

import re

import pytest
import yaml

from order_service.access.first_access import (
    ALPHABET,
    MAX_USER_DATA_BYTES,
    PASSWORD_LENGTH,
    cloud_init_user_data,
    new_root_password,
)


def test_passwords_are_long_random_and_of_the_safe_alphabet() -> None:
    passwords = {new_root_password() for _ in range(200)}
    assert len(passwords) == 200
    for password in passwords:
        assert len(password) == PASSWORD_LENGTH >= 20
        assert set(password) <= set(ALPHABET)
        assert re.search("[a-z]", password) and re.search("[A-Z]", password)
        assert re.search("[0-9]", password)
    assert len(new_root_password(40)) == 40
    with pytest.raises(ValueError):
        new_root_password(12)


def test_the_alphabet_has_nothing_a_shell_or_yaml_would_read() -> None:
    assert set(ALPHABET) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    assert not set(ALPHABET) & set("0Oo1lI")  # no look-alikes
    assert len(ALPHABET) == 56


def test_user_data_sets_roots_password_at_first_boot() -> None:
    password = new_root_password()
    document = cloud_init_user_data(password)
    assert document.startswith("#cloud-config\n")
    assert len(document.encode()) < MAX_USER_DATA_BYTES
    assert document == (
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


def test_user_data_is_valid_yaml_with_the_password_as_a_string() -> None:
    password = new_root_password()
    config = yaml.safe_load(cloud_init_user_data(password))
    assert config == {
        "ssh_pwauth": True,
        "chpasswd": {
            "expire": False,
            "users": [{"name": "root", "password": password, "type": "text"}],
            "list": f"root:{password}\n",
        },
    }


@pytest.mark.parametrize(
    "password",
    [
        "short1A",
        'a"b' + "A2" * 10,
        "x" * 19,
        "with space 234567ABCDEF",
        "colon:abcdefABCDEF23456789",
        "new\nline" + "A2" * 10,
        "ümlautABCDEFGH23456789",
        "0O1lIoABCDEFGH23456789",
        "x" * 129,
    ],
)
def test_user_data_refuses_a_password_outside_the_alphabet(password: str) -> None:
    with pytest.raises(ValueError) as refused:
        cloud_init_user_data(password)
    assert password not in str(refused.value)
