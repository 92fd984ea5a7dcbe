"""``create_store``: which URL schemes reach which backend, and the driver each one gets."""

from __future__ import annotations

import pytest

from jobimporter.errors import ConfigError
from jobimporter.store import create_store
from jobimporter.store.sql import SQLStore


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////var/lib/jobs.db", "sqlite+aiosqlite:////var/lib/jobs.db"),
        ("sqlite:///data/jobs.db", "sqlite+aiosqlite:///data/jobs.db"),
        ("sqlite+aiosqlite:///data/jobs.db", "sqlite+aiosqlite:///data/jobs.db"),
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://u:p@db:5432/jobs", "postgresql+asyncpg://u:p@db:5432/jobs"),
        ("postgres://u:p@db/jobs", "postgresql+asyncpg://u:p@db/jobs"),
        ("postgresql+asyncpg://u@db/jobs", "postgresql+asyncpg://u@db/jobs"),
        ("postgresql+psycopg://u@db/jobs?sslmode=require", "postgresql+asyncpg://u@db/jobs?ssl=require"),
        (
            "postgresql://u@/jobs?host=/run/pg&sslmode=disable",
            "postgresql+asyncpg://u@/jobs?host=/run/pg&ssl=disable",
        ),
        ("PostgreSQL://u@db/jobs", "postgresql+asyncpg://u@db/jobs"),
        ("  sqlite:///jobs.db\n", "sqlite+aiosqlite:///jobs.db"),
    ],
)
def test_sql_schemes_get_an_sql_store_with_the_async_driver(url: str, expected: str) -> None:
    store = create_store(url)
    assert isinstance(store, SQLStore)
    assert str(store._url) == expected


@pytest.mark.parametrize("url", ["mongodb://localhost:27017/jobs", "mongodb+srv://cluster.example/jobs"])
def test_mongodb_is_planned_but_refused(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        create_store(url)
    assert str(caught.value) == (
        "store: the MongoDB backend is not available yet (planned); use sqlite:// or postgresql://"
    )


@pytest.mark.parametrize(
    "url", ["mysql://u:secret@db/jobs", "redis://localhost/0", "postgresql+psycopg2://u@db/jobs", "http://x"]
)
def test_unknown_schemes_name_the_accepted_ones(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        create_store(url)
    message = str(caught.value)
    assert message.startswith("store: unsupported database URL scheme")
    for scheme in ("sqlite://", "postgresql://", "postgres://", "mongodb://"):
        assert scheme in message
    assert "secret" not in message


@pytest.mark.parametrize("url", ["", "jobs.db", "/var/lib/jobs.db"])
def test_a_path_is_not_a_url(url: str) -> None:
    with pytest.raises(ConfigError, match="not a database URL"):
        create_store(url)


def test_the_password_is_not_in_the_error() -> None:
    with pytest.raises(ConfigError) as caught:
        create_store("user:hunter2@db/jobs")
    assert "hunter2" not in str(caught.value)
