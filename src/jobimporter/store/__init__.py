"""The storage stage: the ``JobStore`` port and ``create_store(url)``, the one place that maps a
database URL's scheme to a backend (and rewrites the driver part to the async driver we use).

- ``sqlite:///path``, ``sqlite+aiosqlite:///path`` → ``SQLStore`` over aiosqlite
- ``postgresql://``, ``postgres://``, ``postgresql+asyncpg://``, ``postgresql+psycopg://``
  → ``SQLStore`` over asyncpg
- ``mongodb://``, ``mongodb+srv://`` → ``MongoStore`` over pymongo's ``AsyncMongoClient`` (the URL
  as it is: pymongo reads its options)
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from jobimporter.errors import ConfigError
from jobimporter.store.base import EntryChanges, JobStore, StoredJob

__all__ = ["EntryChanges", "JobStore", "StoredJob", "create_store"]

# scheme → the SQLAlchemy async driver name that replaces it
_SQL_SCHEMES = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "postgresql+psycopg": "postgresql+asyncpg",
}
_MONGO_SCHEMES = ("mongodb", "mongodb+srv")
ACCEPTED_SCHEMES = (*_SQL_SCHEMES, *_MONGO_SCHEMES)


def create_store(url: str) -> JobStore:
    """A store for ``url``, not started yet (``await store.start()`` or ``async with store:``)."""
    scheme, sep, rest = url.strip().partition("://")
    scheme = scheme.lower()
    if not sep:
        # Not echoed: a string without a scheme may still hold a password.
        raise ConfigError(f"store: the database setting is not a database URL (no scheme://); {_accepted()}")
    if scheme in _MONGO_SCHEMES:
        from jobimporter.store.mongo import MongoStore  # only now, as SQLAlchemy below

        return MongoStore(f"{scheme}://{rest}")
    driver = _SQL_SCHEMES.get(scheme)
    if driver is None:
        raise ConfigError(f"store: unsupported database URL scheme {scheme!r}; {_accepted()}")
    if driver == "postgresql+asyncpg":
        rest = _asyncpg_query(rest)
    from jobimporter.store.sql import SQLStore  # only now: keeps SQLAlchemy out of light imports

    return SQLStore(f"{driver}://{rest}")


def _asyncpg_query(rest: str) -> str:
    """libpq's ``sslmode=`` (what psycopg URLs carry) is ``ssl=`` to asyncpg, same values."""
    location, sep, query = rest.partition("?")
    if not sep:
        return rest
    params = [
        ("ssl" if name == "sslmode" else name, value)
        for name, value in parse_qsl(query, keep_blank_values=True)
    ]
    return f"{location}?{urlencode(params, safe='/')}"


def _accepted() -> str:
    return "use one of " + ", ".join(f"{s}://" for s in ACCEPTED_SCHEMES)
