"""Which database failures are 503 DATABASE_UNAVAILABLE and which stay 500."""

from __future__ import annotations

import asyncpg
import sqlalchemy.exc

from order_service.errors import _is_connection_failure


def _wrapped(cause: BaseException) -> sqlalchemy.exc.DBAPIError:
    try:
        try:
            raise cause
        except BaseException as inner:
            raise sqlalchemy.exc.DBAPIError("SELECT 1", None, Exception("adapted")) from inner
    except sqlalchemy.exc.DBAPIError as outer:
        return outer


def test_too_many_connections_is_a_connection_failure() -> None:
    error = _wrapped(asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients"))
    assert _is_connection_failure(error)


def test_refused_connection_is_a_connection_failure() -> None:
    assert _is_connection_failure(_wrapped(ConnectionRefusedError(111, "refused")))


def test_a_data_error_is_not() -> None:
    error = _wrapped(asyncpg.exceptions.DataError("value out of int32 range"))
    assert not _is_connection_failure(error)
