"""Fast JSON responses: orjson straight to bytes.

Endpoints return these Response objects directly, so FastAPI skips its generic
encoder and response-model validation on the hot path; the `response_model`
declared on each route still documents the shape in OpenAPI, and tests check
that what we send matches it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from starlette.responses import Response

_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def _default(value: Any) -> Any:
    # asyncpg hands back its own UUID subclass, which orjson does not take natively.
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def dumps(payload: Any) -> bytes:
    return orjson.dumps(payload, default=_default, option=_OPTIONS)


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, the SPEC's timestamp format."""
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def json_response(
    payload: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        dumps(payload), status_code=status_code, headers=headers, media_type="application/json"
    )


__all__ = ["dumps", "iso", "json_response"]
