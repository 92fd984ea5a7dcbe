"""How pymongo's failures become ``StoreError``: which may pass on a retry, which mean the server is
out of reach, and the reason shown (the server's own words, one line)."""

from __future__ import annotations

import pytest
from bson.errors import InvalidDocument
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    DuplicateKeyError,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
    WaitQueueTimeoutError,
)

from jobimporter.errors import StoreError
from jobimporter.store.mongo_errors import is_transient, is_unreachable, reason, translated

CONFLICT = OperationFailure(
    "WriteConflict error: this operation conflicted, full error: {...}",
    112,
    {"ok": 0, "errmsg": "WriteConflict error: this operation conflicted", "code": 112,
     "errorLabels": ["TransientTransactionError"]},
)  # fmt: skip
DUPLICATE = DuplicateKeyError(
    "E11000 duplicate key error collection: jobs.feeds index: url_1", 11000,
    {"errmsg": "E11000 duplicate key error collection: jobs.feeds index: url_1", "code": 11000},
)  # fmt: skip


def bulk_error(*codes: int) -> BulkWriteError:
    errors = [
        {"index": i, "code": code, "errmsg": f"error {code}\nsecond line"} for i, code in enumerate(codes)
    ]
    return BulkWriteError({"writeErrors": errors, "nInserted": 0})


@pytest.mark.parametrize(
    ("exc", "transient", "unreachable"),
    [
        (ServerSelectionTimeoutError("127.0.0.1:9: [Errno 111] Connection refused"), True, True),
        (AutoReconnect("connection closed"), True, True),
        (NetworkTimeout("timed out"), True, True),
        (NotPrimaryError("not primary", {"code": 10107}), True, True),
        (WaitQueueTimeoutError("pool exhausted"), True, False),
        (ConnectionRefusedError(111, "refused"), True, True),
        (CONFLICT, True, False),
        (OperationFailure("interrupted at shutdown", 11600), True, False),
        (OperationFailure("operation exceeded time limit", 50), True, False),
        (DUPLICATE, False, False),
        (OperationFailure("not authorized on jobs", 13), False, False),
        (bulk_error(112), True, False),
        (bulk_error(11000), False, False),
        (InvalidDocument("cannot encode object: {1, 2}"), False, False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_each_failure_is_classified(exc: BaseException, transient: bool, unreachable: bool) -> None:
    assert (is_transient(exc), is_unreachable(exc)) == (transient, unreachable)


def test_the_reason_is_the_servers_message_without_the_reply_dump() -> None:
    assert reason(CONFLICT) == "WriteConflict error: this operation conflicted"
    assert reason(bulk_error(11000)) == "error 11000"  # the first write's, first line
    assert reason(ServerSelectionTimeoutError("a:1: refused, full error: {'x': 1}")) == "a:1: refused"


def test_translated_names_the_action_and_keeps_the_cause() -> None:
    with pytest.raises(StoreError) as caught, translated("list runs"):
        raise ServerSelectionTimeoutError("127.0.0.1:9: refused")
    assert str(caught.value) == "store: database unreachable (list runs): 127.0.0.1:9: refused"
    assert caught.value.transient and isinstance(caught.value.__cause__, ServerSelectionTimeoutError)
    with pytest.raises(StoreError) as refused, translated("add feed"):
        raise DUPLICATE
    assert (
        str(refused.value)
        == "store: add feed failed: E11000 duplicate key error collection: jobs.feeds index: url_1"
    )
    assert not refused.value.transient
