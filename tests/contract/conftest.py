"""Store fixtures for the contract suite: one per backend, each a fresh, started store on its own
database; ``store`` runs a test over every backend (apscheduler's ``raw_datastore`` habit)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from pytest_lazy_fixtures import lf

from jobimporter.store import JobStore, create_store
from jobimporter.store.mongo import MongoStore
from jobimporter.store.sql import SQLStore


@asynccontextmanager
async def started_store(url: str) -> AsyncIterator[JobStore]:
    store = create_store(url)
    async with store:
        yield store
        if isinstance(store, SQLStore):
            # Every method must give its connection back, whatever happened in it.
            status = store.engine.pool.status()
            assert "Current Checked out connections: 0" in status, status


@pytest.fixture
async def sqlite_store(sqlite_url: str) -> AsyncIterator[JobStore]:
    async with started_store(sqlite_url) as store:
        yield store


@pytest.fixture
async def postgres_store(pg_database_url: str) -> AsyncIterator[JobStore]:
    async with started_store(pg_database_url) as store:
        yield store


@pytest.fixture
async def mongo_store(mongo_database_url: str) -> AsyncIterator[MongoStore]:
    async with started_store(mongo_database_url) as store:
        assert isinstance(store, MongoStore)
        yield store


_SQL = [
    pytest.param(lf("sqlite_store"), id="sqlite"),
    pytest.param(lf("postgres_store"), id="postgres", marks=pytest.mark.external_service),
]


@pytest.fixture(
    params=[*_SQL, pytest.param(lf("mongo_store"), id="mongodb", marks=pytest.mark.external_service)]
)
def store(request: pytest.FixtureRequest) -> JobStore:
    """A fresh, started store of each backend."""
    backend: JobStore = request.param
    return backend


@pytest.fixture(params=_SQL)
def sql_store(request: pytest.FixtureRequest) -> SQLStore:
    """A fresh, started store of each SQL backend."""
    backend = request.param
    assert isinstance(backend, SQLStore)
    return backend
