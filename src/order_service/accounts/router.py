"""Ops' DO accounts: /api/v1/internal/do-accounts (X-API-Key; SPEC section 13)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Request
from starlette.responses import Response

from order_service.accounts import service
from order_service.accounts.schemas import (
    CreateDoAccountRequest,
    DoAccountOut,
    UpdateDoAccountRequest,
)
from order_service.auth import internal_caller
from order_service.db import on_commit
from order_service.dependencies import Session
from order_service.errors import (
    DigitalOceanUnavailable,
    DoAccountExists,
    DoAccountInUse,
    DoAccountNotFound,
    InvalidDoToken,
    SecretsKeyRequired,
    Unauthorized,
    ValidationFailed,
)
from order_service.jsonresponse import json_response
from order_service.openapi import error_responses
from order_service.orders.router import Limit, Page
from order_service.orders.schemas import DataEnvelope, ListEnvelope

router = APIRouter(
    prefix="/api/v1/internal/do-accounts",
    tags=["internal"],
    dependencies=[Depends(internal_caller)],
)

ACCOUNT_DESCRIPTION = (
    "`droplets` counts the live droplets of our orders in the account, `creating` the creates "
    "in flight, `free` = dropletLimit - reserve - droplets - creating (at least 0). New "
    "droplets go to the active, not UNHEALTHY account with a known limit and the lowest share "
    "used. The token is never shown: `tokenHint` is its last 4 characters."
)


async def _account_id(
    account_id: Annotated[str, Path(description="Account id (UUID)")],
) -> uuid.UUID:
    return service.parse_account_id(account_id)


AccountId = Annotated[uuid.UUID, Depends(_account_id)]


def _check_token(request: Request) -> service.TokenCheck:
    state = request.app.state
    return service.token_checker(state.settings.digitalocean_api_url, state.do_transport)


def _forget_after_commit(request: Request, session: Session, account_id: uuid.UUID) -> None:
    # This process's client of the account reads its new token on next use.
    on_commit(session, lambda: request.app.state.accounts.forget(account_id))


@router.post(
    "",
    status_code=201,
    response_model=DataEnvelope[DoAccountOut],
    summary="Add a DigitalOcean account",
    response_description="The account, checked and HEALTHY",
    description=(
        "The token is checked with DO's `GET /v2/account` first (refused: 400 INVALID_DO_TOKEN, "
        "nothing stored), then stored encrypted with SECRETS_KEY (unset: 409 "
        "SECRETS_KEY_REQUIRED). Orders waiting for capacity take its slots at once. "
        + ACCOUNT_DESCRIPTION
    ),
    responses=error_responses(
        ValidationFailed,
        Unauthorized,
        InvalidDoToken,
        DoAccountExists,
        SecretsKeyRequired,
        DigitalOceanUnavailable,
    ),
)
async def create_account(
    request: Request, body: Annotated[CreateDoAccountRequest, Body()], session: Session
) -> Response:
    result = await service.create_account(
        session, request.app.state.secret_box, _check_token(request), body
    )
    return json_response(result, 201)


@router.get(
    "",
    response_model=ListEnvelope[DoAccountOut],
    summary="The DigitalOcean accounts, by name",
    response_description="One page of accounts and the paging meta",
    description=ACCOUNT_DESCRIPTION,
    responses=error_responses(ValidationFailed, Unauthorized),
)
async def list_accounts(session: Session, page: Page = 1, limit: Limit = 20) -> Response:
    return json_response(await service.list_accounts(session, page=page, limit=limit))


@router.get(
    "/{account_id}",
    response_model=DataEnvelope[DoAccountOut],
    summary="One DigitalOcean account",
    response_description="The account",
    responses=error_responses(Unauthorized, DoAccountNotFound),
)
async def get_account(account_id: AccountId, session: Session) -> Response:
    return json_response(await service.get_account(session, account_id))


@router.patch(
    "/{account_id}",
    response_model=DataEnvelope[DoAccountOut],
    summary="Enable, disable, change the reserve or the token of an account",
    response_description="The account after the change",
    description=(
        "A new `token` is checked with DO first (refused: 400 INVALID_DO_TOKEN, nothing "
        "changed); it makes an UNHEALTHY account HEALTHY again (`do_account.healthy`) and "
        "the work on its droplets resumes. `default` takes `isActive` and `reserve` but no "
        "token (400 VALIDATION_ERROR: its token is DIGITALOCEAN_API_TOKEN)."
    ),
    responses=error_responses(
        ValidationFailed,
        Unauthorized,
        DoAccountNotFound,
        InvalidDoToken,
        SecretsKeyRequired,
        DigitalOceanUnavailable,
    ),
)
async def update_account(
    request: Request,
    account_id: AccountId,
    body: Annotated[UpdateDoAccountRequest, Body()],
    session: Session,
) -> Response:
    result = await service.update_account(
        session, request.app.state.secret_box, _check_token(request), account_id, body
    )
    _forget_after_commit(request, session, account_id)
    return json_response(result)


@router.delete(
    "/{account_id}",
    status_code=204,
    summary="Remove an account that holds none of our droplets",
    response_description="Removed",
    description=(
        "409 DO_ACCOUNT_IN_USE while a droplet of ours lives in it (terminate those orders "
        "first); `default` cannot be removed (400 VALIDATION_ERROR)."
    ),
    responses=error_responses(ValidationFailed, Unauthorized, DoAccountNotFound, DoAccountInUse),
)
async def delete_account(request: Request, account_id: AccountId, session: Session) -> Response:
    await service.delete_account(session, account_id)
    _forget_after_commit(request, session, account_id)
    return Response(status_code=204)


@router.post(
    "/{account_id}/check",
    response_model=DataEnvelope[DoAccountOut],
    summary="Check an account with DO now",
    response_description="The account as DO just described it",
    description=(
        "`GET /v2/account` now: refreshes `dropletLimit` and `health` (401/403 -> UNHEALTHY; "
        "a passing check of an UNHEALTHY account -> HEALTHY, its work resumes)."
    ),
    responses=error_responses(Unauthorized, DoAccountNotFound),
)
async def check_account(request: Request, account_id: AccountId) -> Response:
    # No request session around the check: the check writes in a transaction of its
    # own (on SQLite a session held open here would hold the write lock it needs).
    state = request.app.state
    async with state.sessionmaker() as session:
        await service.get_account(session, account_id)  # 404 before DO is asked
    state.accounts.forget(account_id)
    await state.account_checker.check(account_id)
    async with state.sessionmaker() as session:
        return json_response(await service.get_account(session, account_id))
