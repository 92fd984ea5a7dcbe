"""How pymongo and BSON failures become ``StoreError``: transient or not, one record's fault or not.

Everything the driver raises is translated here, so no driver exception leaves the store.
Classification uses the server's error labels (``TransientTransactionError``, ``RetryableWriteError``)
and codes, and pymongo's exception classes for lost connections.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bson.errors import BSONError, InvalidDocument
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    OperationFailure,
    PyMongoError,
    WaitQueueTimeoutError,
)

from jobimporter.errors import StoreError

# What the driver may raise at us; BSONError covers values that cannot be encoded.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (PyMongoError, BSONError, OSError)

# Raised by the encoder for a value BSON cannot hold (a set, an int over 64 bits, a NUL in a key).
CLIENT_VALUE_ERRORS: tuple[type[BaseException], ...] = (InvalidDocument, OverflowError)

DUPLICATE_KEY = 11000
NAMESPACE_EXISTS = 48
WRITE_CONFLICT = 112  # a concurrent transaction wrote the document first
# Retrying may succeed: write conflict, lock or time limits, the primary stepping down or the server
# shutting down, interrupted operations.
_TRANSIENT_CODES = frozenset(
    {6, 7, 24, 50, 89, 91, 112, 189, 251, 262, 9001, 10107, 11600, 11602, 13435, 13436}
)
_TRANSIENT_LABELS = ("TransientTransactionError", "RetryableWriteError", "UnknownTransactionCommitResult")


def is_unreachable(exc: BaseException) -> bool:
    """Whether the server could not be reached at all (down, restarting, connection lost, no
    primary), as opposed to refusing one command."""
    if isinstance(exc, OSError):  # a socket error pymongo did not wrap
        return True
    return isinstance(exc, ConnectionFailure) and not isinstance(exc, WaitQueueTimeoutError)


def is_transient(exc: BaseException) -> bool:
    """Whether the same call may succeed if retried later."""
    if isinstance(exc, (ConnectionFailure, OSError)):  # unreachable, or the pool exhausted for a while
        return True
    if not isinstance(exc, PyMongoError):
        return False
    if exc.timeout or any(exc.has_error_label(label) for label in _TRANSIENT_LABELS):
        return True
    if isinstance(exc, BulkWriteError):  # its own code is 65 ("multiple errors"): look at the writes'
        errors = exc.details.get("writeErrors") or [{}]
        return all(is_transient_code(error.get("code")) for error in errors)
    return isinstance(exc, OperationFailure) and is_transient_code(exc.code)


def is_transient_code(code: object) -> bool:
    """Whether a server error code (of a command or of one write) may pass if retried."""
    return code in _TRANSIENT_CODES


def reason(exc: BaseException) -> str:
    """The server's own words (its ``errmsg``, or the first write error's), without pymongo's dump of
    the whole reply; one line, bounded."""
    if isinstance(exc, BulkWriteError) and exc.details.get("writeErrors"):
        text = str(exc.details["writeErrors"][0].get("errmsg") or exc)
    elif isinstance(exc, OperationFailure) and exc.details and exc.details.get("errmsg"):
        text = str(exc.details["errmsg"])
    else:
        text = str(exc).split(", full error:", 1)[0]
    lines = text.strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:500]


@contextmanager
def translated(action: str) -> Iterator[None]:
    """Run a store operation, turning driver failures into ``StoreError`` with the server's reason."""
    try:
        yield
    except StoreError:
        raise
    except DRIVER_ERRORS as exc:
        if is_unreachable(exc):
            raise StoreError(
                f"store: database unreachable ({action}): {reason(exc)}", transient=True
            ) from exc
        raise StoreError(f"store: {action} failed: {reason(exc)}", transient=is_transient(exc)) from exc
