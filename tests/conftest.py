"""Shared fixtures. Real servers only: a private Redis, a private PostgreSQL, a private SecantusDB (a
MongoDB wire-protocol server), a local feed server.

Each plugin module owns one server; this file only wires them in and cleans the environment.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

pytest_plugins = [
    "plugins.postgres",
    "plugins.mongo",
    "plugins.databases",
    "plugins.feedserver",
    "plugins.hookserver",
    "plugins.redis",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` go first, so that xdist's two processes are not left with one of them
    running a minute-long test alone at the end (a stable sort: the same order in every process)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without our settings or proxies in the environment (httpx's habit)."""
    for name in list(os.environ):
        if (
            name.startswith("JOBIMPORTER_")
            or name in ("DATABASE_URL", "REDIS_URL")
            or name.lower().endswith("_proxy")
        ):
            monkeypatch.delenv(name, raising=False)
    yield
