"""Database URLs for tests that run once per store backend: an SQLite file in the test's temp dir, a
fresh database on the private PostgreSQL (``plugins.postgres``) and one on the private SecantusDB, or
the MongoDB given in ``JOBIMPORTER_TEST_MONGODB_URL`` (``plugins.mongo``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_lazy_fixtures import lf


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"


_SQL = [
    pytest.param(lf("sqlite_url"), id="sqlite"),
    pytest.param(lf("pg_database_url"), id="postgres", marks=pytest.mark.external_service),
]
_MONGODB = pytest.param(lf("mongo_database_url"), id="mongodb", marks=pytest.mark.external_service)


@pytest.fixture(params=[*_SQL, _MONGODB])
def database_url(request: pytest.FixtureRequest) -> str:
    """An empty database of each backend."""
    return str(request.param)


@pytest.fixture(params=_SQL)
def sql_database_url(request: pytest.FixtureRequest) -> str:
    """An empty database of each SQL backend (for what only SQL has: engines, Alembic)."""
    return str(request.param)


@pytest.fixture(
    params=[
        pytest.param(lf("pg_database_url"), id="postgres", marks=pytest.mark.external_service),
        _MONGODB,
    ]
)
def server_database_url(request: pytest.FixtureRequest) -> str:
    """An empty database on each database server (PostgreSQL, MongoDB), for tests whose processes
    share it as production ones do."""
    return str(request.param)
