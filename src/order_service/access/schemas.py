"""Request and response shapes of the SSH key API (camelCase JSON, SPEC section 14)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field, field_validator

from order_service.orders.schemas import NO_NUL, CamelModel

SshKeyType = Literal[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
]
EXAMPLE_PUBLIC_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDS7/SJYkaQK8XqWvwZrgUbuJAep4VAJvC+RXgset6e2 ani@laptop"
)
EXAMPLE_FINGERPRINT = "62:f7:53:a7:90:ec:a6:bd:9d:14:a3:a9:a9:93:de:94"


class CreateSshKeyRequest(CamelModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "laptop", "publicKey": EXAMPLE_PUBLIC_KEY}]}
    )

    name: str = Field(
        min_length=1, max_length=100, pattern=NO_NUL, description="your label for the key"
    )
    public_key: str = Field(
        max_length=16384,
        description=(
            "one OpenSSH public key line (the .pub file): ssh-ed25519, "
            "ecdsa-sha2-nistp256/384/521, or ssh-rsa of at least 2048 bits; the comment "
            "(third field) is not kept"
        ),
    )

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be blank")
        return value


class SshKeyOut(CamelModel):
    id: uuid.UUID
    name: str
    fingerprint: str = Field(
        description="MD5 of the key, DigitalOcean's form: 16 lower-case hex pairs joined by ':'"
    )
    type: SshKeyType
    created_at: datetime
