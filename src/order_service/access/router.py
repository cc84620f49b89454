"""The user's SSH keys: /api/v1/ssh-keys (bearer JWT; the user is the token's `sub`)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path
from starlette.responses import Response

from order_service.access import service
from order_service.access.schemas import (
    EXAMPLE_FINGERPRINT,
    EXAMPLE_PUBLIC_KEY,
    CreateSshKeyRequest,
    SshKeyOut,
)
from order_service.auth import User
from order_service.dependencies import Session
from order_service.errors import (
    InvalidSshKey,
    SshKeyExists,
    SshKeyNotFound,
    TooManySshKeys,
    Unauthorized,
    ValidationFailed,
)
from order_service.jsonresponse import json_response
from order_service.openapi import error_responses
from order_service.orders.router import Limit, Page
from order_service.orders.schemas import DataEnvelope, ListEnvelope

router = APIRouter(prefix="/api/v1/ssh-keys", tags=["ssh-keys"])
# `user` comes first in every signature: without a valid JWT the answer is 401,
# whatever the id in the path.


async def _ssh_key_id(
    ssh_key_id: Annotated[str, Path(description="SSH key id (UUID)")],
) -> uuid.UUID:
    return service.parse_ssh_key_id(ssh_key_id)


SshKeyId = Annotated[uuid.UUID, Depends(_ssh_key_id)]

EXAMPLE_KEY: dict[str, Any] = {
    "id": "d4000000-0000-4000-8000-000000000001",
    "name": "laptop",
    "fingerprint": EXAMPLE_FINGERPRINT,
    "type": "ssh-ed25519",
    "createdAt": "2026-12-09T08:15:02.120044Z",
}
CREATE_EXAMPLES = {
    "ed25519": {
        "summary": "An ed25519 key (the comment, 'ani@laptop', is not kept)",
        "value": {"name": "laptop", "publicKey": EXAMPLE_PUBLIC_KEY},
    },
}


def _example(status: int, description: str, value: dict[str, Any]) -> dict[int | str, Any]:
    """The success response's documented example (merged with the response model)."""
    return {
        status: {"description": description, "content": {"application/json": {"example": value}}}
    }


@router.post(
    "",
    status_code=201,
    response_model=DataEnvelope[SshKeyOut],
    summary="Add an SSH key to my account",
    description=(
        "`publicKey` is one OpenSSH public key line: `ssh-ed25519`, "
        "`ecdsa-sha2-nistp256/384/521`, or `ssh-rsa` of at least 2048 bits. Anything else "
        "(a DSA or short RSA key, a private key, several lines, garbage) is 400 INVALID_SSH_KEY "
        "with `details.reason`. `fingerprint` is the key's MD5 fingerprint as DigitalOcean "
        "shows it (`ssh-keygen -l -E md5` without the `MD5:`). The same key twice is 409 "
        "SSH_KEY_EXISTS (`details.sshKeyId`: the one you have); at most 20 keys (409 "
        "TOO_MANY_SSH_KEYS)."
    ),
    responses={
        **_example(201, "The new key", {"data": EXAMPLE_KEY}),
        **error_responses(
            ValidationFailed, InvalidSshKey, Unauthorized, SshKeyExists, TooManySshKeys
        ),
    },
)
async def add_ssh_key(
    user: User,
    body: Annotated[CreateSshKeyRequest, Body(openapi_examples=CREATE_EXAMPLES)],
    session: Session,
) -> Response:
    result = await service.add_key(session, user.id, name=body.name, public_key=body.public_key)
    return json_response(result, 201)


@router.get(
    "",
    response_model=ListEnvelope[SshKeyOut],
    summary="List my SSH keys, newest first",
    description="A page past the end is 200 with empty `data` and the true `meta`.",
    responses={
        **_example(
            200,
            "One page of the caller's keys and the paging meta",
            {"data": [EXAMPLE_KEY], "meta": {"page": 1, "limit": 10, "total": 1, "totalPages": 1}},
        ),
        **error_responses(ValidationFailed, Unauthorized),
    },
)
async def list_my_ssh_keys(
    user: User, session: Session, page: Page = 1, limit: Limit = 10
) -> Response:
    return json_response(await service.list_keys(session, user.id, page=page, limit=limit))


@router.get(
    "/{ssh_key_id}",
    response_model=DataEnvelope[SshKeyOut],
    summary="One of my SSH keys",
    description="Another user's key is 404 SSH_KEY_NOT_FOUND, like an unknown or malformed id.",
    responses={
        **_example(200, "The key", {"data": EXAMPLE_KEY}),
        **error_responses(Unauthorized, SshKeyNotFound),
    },
)
async def get_my_ssh_key(user: User, ssh_key_id: SshKeyId, session: Session) -> Response:
    return json_response(await service.get_key(session, user.id, ssh_key_id))


@router.delete(
    "/{ssh_key_id}",
    status_code=204,
    summary="Delete one of my SSH keys",
    response_description="Deleted; no body",
    description=(
        "Orders keep their own copy of the keys they were created with: deleting a key "
        "changes no order and no server."
    ),
    responses=error_responses(Unauthorized, SshKeyNotFound),
)
async def delete_my_ssh_key(user: User, ssh_key_id: SshKeyId, session: Session) -> Response:
    await service.delete_key(session, user.id, ssh_key_id)
    return Response(status_code=204)
