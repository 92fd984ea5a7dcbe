"""How SQL driver failures are classified: a broken connection is worth another attempt (its batch is
retried on a fresh connection), a value the driver refuses fails one record, never the batch."""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]
import pytest

from jobimporter.errors import StoreError
from jobimporter.store.sql_errors import is_record_error, is_transient, is_unreachable, translated

BROKEN = [
    asyncpg.InterfaceError("cannot perform operation: connection is closed"),
    asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
    asyncpg.InterfaceError("cannot perform operation: another operation is cancelling"),
    asyncpg.exceptions.InternalClientError("cannot switch to state 15; another operation (2) is in progress"),
    asyncpg.exceptions.InternalClientError('cannot switch to state 15; protocol is in the "failed" state'),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    FileNotFoundError(2, "No such file or directory"),  # the server's socket is gone
]


@pytest.mark.parametrize("exc", BROKEN, ids=lambda e: str(e)[:40])
def test_a_broken_connection_is_unreachable_and_transient(exc: Exception) -> None:
    assert is_unreachable(exc) and is_transient(exc) and not is_record_error(exc)
    with pytest.raises(StoreError) as raised, translated("upsert batch"):
        raise exc
    assert raised.value.transient and str(raised.value).startswith(
        "store: database unreachable (upsert batch)"
    )


def test_a_value_the_driver_refuses_fails_its_record_not_the_batch() -> None:
    exc = asyncpg.exceptions.DataError("invalid input for query argument $3: 'x' (an integer is required)")
    assert not is_unreachable(exc) and not is_transient(exc) and is_record_error(exc)


def test_a_refused_value_whose_text_reads_like_a_broken_connection_still_fails_its_record() -> None:
    # asyncpg quotes the value in its message: a job titled "Store closed" must not retry the batch.
    # Its protocol raises this class (SQLSTATE 22000) for a value it cannot encode, so the SQLSTATE
    # decides before any words are read.
    exc = asyncpg.exceptions.DataError(
        "invalid input for query argument $2: 'Store closed; another operation' (expected str, got int)"
    )
    assert not is_unreachable(exc) and not is_transient(exc) and is_record_error(exc)


def test_a_client_limit_is_permanent() -> None:
    exc = asyncpg.InterfaceError("the number of query arguments cannot exceed 32767")
    assert not is_transient(exc) and not is_record_error(exc)
