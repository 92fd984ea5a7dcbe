"""``jobimporter run`` serves the API beside its workers; ``jobimporter api`` serves it alone; both take
--host/--port (or JOBIMPORTER_HOST/JOBIMPORTER_PORT) and --sources, and stop cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import serve_jobs

pytestmark = [pytest.mark.external_service, pytest.mark.e2e]

JOBIMPORTER = [sys.executable, "-m", "jobimporter.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def cli_env(tmp_path: Path, redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBIMPORTER_")}
    env.update(
        JOBIMPORTER_DATA_DIR=str(tmp_path / "data"),
        REDIS_URL=redis_url,
        DATABASE_URL=f"sqlite:///{tmp_path / 'jobs.db'}",
        JOBIMPORTER_BACKOFF_MS="100",
        JOBIMPORTER_HOST_INTERVAL_S="0",
        **extra,
    )
    return env


def wait_until_up(base: str, service: subprocess.Popen[str], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert service.poll() is None, service.stderr.read() if service.stderr else ""
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("the API did not come up")


def stop(service: subprocess.Popen[str]) -> tuple[int, str]:
    if service.poll() is None:
        service.send_signal(signal.SIGTERM)
    code = service.wait(timeout=30)
    return code, service.stderr.read() if service.stderr else ""


def test_run_serves_the_api_and_imports_what_it_starts(
    tmp_path: Path, redis_url: str, feeds: Any, real_jobs: list[dict[str, Any]]
) -> None:
    source = serve_jobs(feeds, "/feed", real_jobs[:12])
    sources = tmp_path / "feeds.toml"
    sources.write_text(f'[[feeds]]\nname = "{source.name}"\nurl = "{source.url}"\n', encoding="utf-8")
    port = free_port()
    env = cli_env(tmp_path, redis_url)
    args = [*JOBIMPORTER, "run", "--sources", str(sources), "--port", str(port)]
    service = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base, service)
        run_id = httpx.post(f"{base}/api/runs", timeout=10).json()["run_id"]
        deadline = time.monotonic() + 30
        while (run := httpx.get(f"{base}/api/runs/{run_id}", timeout=5).json())["status"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert (run["status"], run["totals"]["new"], run["trigger"]) == ("completed", 12, "manual")

        clash = subprocess.run(
            [*JOBIMPORTER, "api", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert clash.returncode == 1
        assert clash.stderr.strip().endswith(
            f"api: cannot listen on 127.0.0.1:{port}: Address already in use"
        )
    finally:
        code, stderr = stop(service)
    assert code == 0, stderr
    assert f"admin API and dashboard at http://127.0.0.1:{port}" in " ".join(stderr.split())
    assert "127.0.0.1 only" in " ".join(stderr.split())


def test_api_alone_takes_its_port_from_the_environment_and_syncs_sources(
    tmp_path: Path, redis_url: str, feeds: Any
) -> None:
    sources = tmp_path / "feeds.toml"
    sources.write_text('[[feeds]]\nname = "One"\nurl = "https://one.example/feed"\n', encoding="utf-8")
    port = free_port()
    env = cli_env(tmp_path, redis_url, JOBIMPORTER_PORT=str(port), JOBIMPORTER_SOURCES=str(sources))
    service = subprocess.Popen([*JOBIMPORTER, "api"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base, service)
        listed = httpx.get(f"{base}/api/feeds", timeout=5).json()
        assert [f["url"] for f in listed["items"]] == ["https://one.example/feed"]
        assert httpx.get(f"{base}/", timeout=5).status_code == 200  # the dashboard
    finally:
        code, stderr = stop(service)
    assert code == 0, stderr
