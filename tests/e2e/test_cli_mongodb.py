"""The `jobimporter` command on MongoDB, as a user runs it: import, history and dead letters against a
``mongodb://`` DATABASE_URL, and the one-line refusal of a standalone server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fixtures.wpjm import load_real_jobs, render_feed
from plugins.mongo import SecantusServer, with_database

pytestmark = [pytest.mark.e2e, pytest.mark.external_service]

JOBIMPORTER = [sys.executable, "-m", "jobimporter.cli"]


def cli_env(data_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBIMPORTER_")}
    env.pop("REDIS_URL", None)
    env.update(
        {
            "DATABASE_URL": database_url,
            "JOBIMPORTER_DATA_DIR": str(data_dir),
            "JOBIMPORTER_BACKOFF_MS": "100",  # retries have their own tests at the default
            "JOBIMPORTER_HOST_INTERVAL_S": "0",  # every test feed is on 127.0.0.1
        },
        **extra,
    )
    return env


def jobimporter(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*JOBIMPORTER, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def write_sources(path: Path, feeds: Any, names: list[str]) -> Path:
    lines = [f'[[feeds]]\nname = "{n}"\nurl = "{feeds.url("/" + n)}"\n' for n in names]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_import_history_and_dead_letters_on_mongodb(
    tmp_path: Path, feeds: Any, redis_url: str, mongo_database_url: str
) -> None:
    jobs = load_real_jobs()
    feeds.route("/a", body=render_feed(jobs[:15], title="a", link="https://jobicy.com"))
    feeds.route("/b", body=render_feed(jobs[10:20], title="b", link="https://jobicy.com"))
    feeds.route("/gone", status=404)
    env = cli_env(tmp_path / "data", mongo_database_url, REDIS_URL=redis_url)
    sources = write_sources(tmp_path / "feeds.toml", feeds, ["a", "b", "gone"])

    done = jobimporter(["import", "--sources", str(sources), "--json"], env)
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    by_name = {f["name"]: f for f in run["feeds"]}
    assert (by_name["a"]["total_fetched"], by_name["b"]["total_fetched"]) == (15, 10)
    assert by_name["a"]["new"] + by_name["b"]["new"] == 20  # 5 jobs are in both feeds
    assert by_name["gone"]["status"] == "failed" and "404" in by_name["gone"]["error"]
    assert not (tmp_path / "data" / "jobimporter.db").exists()  # nothing went to the SQLite default

    history = jobimporter(["history", "--json", "--limit", "5"], env)
    assert history.returncode == 0, history.stderr
    assert [r["run_id"] for r in json.loads(history.stdout)] == [run["run_id"]]
    assert json.loads(history.stdout)[0]["feeds"] == run["feeds"]

    listed = jobimporter(["failed", "list", "--json"], env)
    assert listed.returncode == 0, listed.stderr
    (letter,) = json.loads(listed.stdout)
    assert letter["summary"]["name"] == "gone" and "404" in letter["reason"]
    discarded = jobimporter(["failed", "discard", letter["id"]], env)
    assert discarded.returncode == 0, discarded.stderr
    assert json.loads(jobimporter(["failed", "list", "--json"], env).stdout) == []


@pytest.mark.parametrize("command", [["import", "--json"], ["history"], ["worker"]])
def test_a_standalone_mongodb_stops_the_command_with_one_line(
    tmp_path: Path, redis_url: str, command: list[str]
) -> None:
    """Transactions need a replica set: every command refuses a standalone server in one line that
    says how to make one, and exits 1."""
    server = SecantusServer(tmp_path / "mongo", extra_args=["--standalone"])
    server.start()
    try:
        env = cli_env(tmp_path / "data", with_database(server.url, "jobs"), REDIS_URL=redis_url)
        done = jobimporter(command, env)
    finally:
        server.stop()
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        f"jobimporter: store: the MongoDB server at 127.0.0.1:{server.port} is a standalone server, but "
        "jobimporter needs a replica set (for transactions); start mongod with --replSet rs0 and run "
        "rs.initiate() once: a one-node replica set will do\n"
    ), done.stderr
