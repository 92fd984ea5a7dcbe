"""Store fixtures for the contract suite: one per backend, each a fresh, started store on its own
database; ``store`` runs a test over every backend (apscheduler's ``raw_datastore`` habit)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from pytest_lazy_fixtures import lf

from jobimporter.store import JobStore, create_store
from jobimporter.store.sql import SQLStore


@asynccontextmanager
async def started_store(url: str) -> AsyncIterator[SQLStore]:
    store = create_store(url)
    assert isinstance(store, SQLStore)
    async with store:
        yield store
        # Every method must give its connection back, whatever happened in it.
        status = store.engine.pool.status()
        assert "Current Checked out connections: 0" in status, status


@pytest.fixture
async def sqlite_store(sqlite_url: str) -> AsyncIterator[SQLStore]:
    async with started_store(sqlite_url) as store:
        yield store


@pytest.fixture
async def postgres_store(pg_database_url: str) -> AsyncIterator[SQLStore]:
    async with started_store(pg_database_url) as store:
        yield store


@pytest.fixture(
    params=[
        pytest.param(lf("sqlite_store"), id="sqlite"),
        pytest.param(lf("postgres_store"), id="postgres", marks=pytest.mark.external_service),
    ]
)
def store(request: pytest.FixtureRequest) -> JobStore:
    """A fresh, started store of each backend."""
    backend: JobStore = request.param
    return backend
