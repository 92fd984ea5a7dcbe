"""Database URLs for tests that run once per store backend: an SQLite file in the test's temp dir,
and a fresh database on the private PostgreSQL (``plugins.postgres``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_lazy_fixtures import lf


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"


@pytest.fixture(
    params=[
        pytest.param(lf("sqlite_url"), id="sqlite"),
        pytest.param(lf("pg_database_url"), id="postgres", marks=pytest.mark.external_service),
    ]
)
def database_url(request: pytest.FixtureRequest) -> str:
    """An empty database of each backend."""
    return str(request.param)
