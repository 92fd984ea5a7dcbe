"""``create_store``: which URL schemes reach which backend, and the driver each one gets."""

from __future__ import annotations

import pytest

from jobimporter.errors import ConfigError
from jobimporter.store import create_store
from jobimporter.store.mongo import MongoStore
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


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mongodb://localhost:27017/jobs", "mongodb://localhost:27017/jobs"),
        (
            "mongodb+srv://u:p@cluster.example/jobs?retryWrites=true",
            "mongodb+srv://u:p@cluster.example/jobs?retryWrites=true",
        ),
        (
            "MongoDB://h1:27017,h2:27017/jobs?replicaSet=rs0\n",
            "mongodb://h1:27017,h2:27017/jobs?replicaSet=rs0",
        ),
    ],
)
def test_mongodb_schemes_get_a_mongo_store_with_the_url_as_it_is(url: str, expected: str) -> None:
    store = create_store(url)
    assert isinstance(store, MongoStore)
    assert store._url == expected


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


@pytest.mark.parametrize(
    ("url", "timeout_s", "app"),
    [
        ("mongodb://db.example/jobs", 10.0, "jobimporter"),
        ("mongodb://db.example/jobs?serverSelectionTimeoutMS=500&appName=board", 0.5, "board"),
        ("mongodb://db.example/jobs?serverselectiontimeoutms=2000", 2.0, "jobimporter"),
    ],
)
async def test_a_mongo_client_takes_our_defaults_unless_the_url_sets_them(
    url: str, timeout_s: float, app: str
) -> None:
    from jobimporter.store.mongo import create_client

    client = create_client(url)  # connect=False: nothing is contacted
    try:
        assert client.options.server_selection_timeout == timeout_s
        assert client.options.pool_options.metadata["application"]["name"] == app
        assert client.codec_options.tz_aware
    finally:
        await client.close()
