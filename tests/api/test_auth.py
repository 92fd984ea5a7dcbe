"""The bearer check: with JOBIMPORTER_ADMIN_TOKEN set, mutations need it (401 otherwise); reads never."""

from __future__ import annotations

import httpx
import pytest

from .conftest import TOKEN

pytestmark = [pytest.mark.external_service]


@pytest.fixture
def admin_token() -> str:
    return TOKEN


MUTATIONS = [
    ("POST", "/api/runs"),
    ("POST", "/api/feeds"),
    ("PATCH", "/api/feeds/feed_x"),
    ("DELETE", "/api/feeds/feed_x"),
    ("POST", "/api/failed/retry"),
    ("POST", "/api/failed/jobimporter-feeds:feed-x/retry"),
    ("DELETE", "/api/failed/jobimporter-feeds:feed-x"),
]


async def test_mutations_need_the_token_and_reads_do_not(client: httpx.AsyncClient) -> None:
    for method, path in MUTATIONS:
        for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {TOKEN}"}):
            answer = await client.request(method, path, headers=headers)
            assert answer.status_code == 401, (method, path, headers, answer.text)
            assert answer.headers["www-authenticate"] == "Bearer"
            assert "admin token" in answer.json()["detail"]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    created = await client.post("/api/feeds", json={"name": "x", "url": "https://x.example/"}, headers=auth)
    assert created.status_code == 201
    assert (await client.delete("/api/failed/jobimporter-feeds:feed-x", headers=auth)).status_code == 404
    for path in ("/api/runs", "/api/imports", "/api/feeds", "/api/jobs", "/api/queue", "/api/failed",
                 "/api/stats", "/healthz", "/readyz"):  # fmt: skip
        assert (await client.get(path)).status_code == 200, path
