"""SECRETS_KEY: MultiFernet at rest, rotation, and refusals that name no key."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from order_service.config import ConfigError, load_settings
from order_service.secret_box import (
    InvalidToken,
    SecretBox,
    SecretsKeyRequired,
    require,
    secret_box,
)

BASE = {"internal_api_key": "k", "jwt_algorithm": "HS256", "jwt_secret": "s", "_env_file": None}


def test_first_key_encrypts_every_key_decrypts_and_rotate_moves_to_the_first() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    sealed_with_old = SecretBox([old]).encrypt("dop_v1_secret")
    both = SecretBox([new, old])
    assert both.decrypt(sealed_with_old) == "dop_v1_secret"
    rotated = both.rotate(sealed_with_old)
    # After rotation the old key can be dropped: the new one alone opens it.
    assert SecretBox([new]).decrypt(rotated) == "dop_v1_secret"
    with pytest.raises(InvalidToken):
        SecretBox([old]).decrypt(rotated)
    assert "dop_v1_secret" not in rotated and "dop_v1_secret" not in sealed_with_old


def test_settings_parse_keys_and_name_a_bad_entry_by_position_only() -> None:
    good = Fernet.generate_key().decode()
    settings = load_settings(**BASE, secrets_key=f"{good}, {Fernet.generate_key().decode()}")
    assert len(settings.secret_keys) == 2
    box = secret_box(settings)
    assert box is not None and good not in repr(box)
    with pytest.raises(ConfigError) as refused:
        load_settings(**BASE, secrets_key=f"{good},not-a-key-at-all")
    assert "entry 2" in str(refused.value) and "not-a-key" not in str(refused.value)


def test_without_a_key_the_features_answer_409() -> None:
    settings = load_settings(**BASE)
    assert secret_box(settings) is None
    with pytest.raises(SecretsKeyRequired) as refused:
        require(None)
    assert refused.value.status_code == 409 and refused.value.code == "SECRETS_KEY_REQUIRED"
