"""How SQL driver failures become ``StoreError``: transient or not, one record's fault or the batch's.

Everything the drivers (asyncpg, aiosqlite) or SQLAlchemy raise is translated here, so no driver
exception leaves the store. Classification works on PostgreSQL SQLSTATEs and SQLite's messages.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg  # type: ignore[import-untyped]  # no py.typed; only its exception classes are used
from sqlalchemy import exc as sa_exc

from jobimporter.errors import StoreError

# asyncpg's client-side failures (a connection's state, a client limit). A value it cannot encode
# comes as asyncpg.exceptions.DataError, which carries SQLSTATE 22000 and is classified by it.
_ASYNCPG_CLIENT_ERRORS = (asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError)
# What a driver may raise at us; OSError covers refused/reset connections, which asyncpg raises raw
# while connecting.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.SQLAlchemyError,
    OSError,
    TimeoutError,
    sqlite3.Error,
    asyncpg.PostgresError,
    *_ASYNCPG_CLIENT_ERRORS,
)


class UnstorableValue(ValueError):
    """A record holds a value the driver cannot encode, found while preparing rows by hand."""


# Retrying may succeed: serialization failure, deadlock, lock timeout, cancelled by timeout, server
# shutting down or out of resources.
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03"})
_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "53"})
_SHUTDOWN_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})  # admin/crash shutdown, cannot connect now
# The data itself is at fault: data exception, integrity violation, program limit (e.g. an index
# row too large). These fail one record, never the batch.
_RECORD_SQLSTATE_CLASSES = frozenset({"22", "23", "54"})
_SQLITE_TRANSIENT_MESSAGES = ("database is locked", "database table is locked", "database is busy")
# Raised while binding or serializing a value (bad text encoding, JSON it cannot encode, numbers out
# of range; asyncpg's client-side DataError is a ValueError): the driver refuses the record before
# the database sees it.
_CLIENT_VALUE_ERRORS = (ValueError, TypeError, OverflowError)
# asyncpg's words for a connection that died or was left mid-operation (the server went away, an
# operation on it was cancelled): the next attempt takes a fresh connection.
_BROKEN_CONNECTION_MESSAGES = ("closed", "another operation", 'protocol is in the "failed" state')


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what SQLAlchemy wrapped (``orig``), and their causes, without repeats."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        todo += [orig if isinstance(orig, BaseException) else None, current.__cause__]


def sqlstate(exc: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE carried anywhere in the chain, if any."""
    for item in _chain(exc):
        code = getattr(item, "sqlstate", None)
        if isinstance(code, str) and code:
            return code
    return None


def reason(exc: BaseException) -> str:
    """The database's own words, without SQLAlchemy's statement dump; one line, bounded."""
    for item in _chain(exc):
        if not isinstance(item, sa_exc.SQLAlchemyError):
            text = str(item).strip().splitlines()
            return (text[0] if text else type(item).__name__)[:500]
    return str(exc).splitlines()[0][:500]


def is_transient(exc: BaseException) -> bool:
    """Whether the same call may succeed if retried later."""
    if is_unreachable(exc):
        return True
    if isinstance(exc, sa_exc.TimeoutError):  # pool exhausted for pool_timeout seconds
        return True
    code = sqlstate(exc)
    if code is not None:
        return code in _TRANSIENT_SQLSTATES or code[:2] in _TRANSIENT_SQLSTATE_CLASSES
    for item in _chain(exc):
        if isinstance(item, TimeoutError):
            return True
        if isinstance(item, sqlite3.OperationalError):
            return any(m in str(item).lower() for m in _SQLITE_TRANSIENT_MESSAGES)
    return False


def is_unreachable(exc: BaseException) -> bool:
    """Whether the database could not be reached at all (down, restarting, connection lost), as
    opposed to refusing one statement: the reason then says so in plain words."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    code = sqlstate(exc)
    if code is not None:
        return code[:2] == "08" or code in _SHUTDOWN_SQLSTATES
    for item in _chain(exc):
        if isinstance(item, OSError) and not isinstance(item, TimeoutError):
            return True
        if isinstance(item, _ASYNCPG_CLIENT_ERRORS) and _says_broken_connection(str(item)):
            return True
    return False


def _says_broken_connection(message: str) -> bool:
    return any(words in message for words in _BROKEN_CONNECTION_MESSAGES)


def is_record_error(exc: BaseException) -> bool:
    """Whether the failure is caused by a value in the data (so one record can fail alone)."""
    if is_transient(exc):
        return False
    code = sqlstate(exc)
    if code is not None:
        return code[:2] in _RECORD_SQLSTATE_CLASSES
    return any(
        isinstance(item, (sqlite3.IntegrityError, sqlite3.DataError, *_CLIENT_VALUE_ERRORS))
        for item in _chain(exc)
    )


@contextmanager
def translated(action: str) -> Iterator[None]:
    """Run a store operation, turning driver failures into ``StoreError`` with the database's reason."""
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
