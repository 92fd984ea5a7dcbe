"""A soak: twenty consecutive ``jobimporter import`` runs of the built-in shape on one data directory,
each a fresh process starting (and stopping) its embedded Redis, every one of which must finish.

Among them: the first import (all new), re-imports (all unchanged), three jobs edited at the source
(exactly 3 updated, then back), and a feed that answers 500 once (retried, completed). The host
interval is 0.1 s instead of the default 2 s, so that twenty runs fit in the suite's time;
``test_default_workload`` runs the same shape at 2 s.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.wpjm import (
    HIGHER_ED_FEED,
    MAIN_FEED,
    ONLY_IN_MAIN,
    changed_copy,
    distinct_jobs,
    load_real_jobs,
    nine_feeds,
    render_feed,
)
from jobimporter.models import EntryStatus, ImportRun, RunStatus
from plugins.feedserver import FeedServer

pytestmark = [pytest.mark.e2e, pytest.mark.external_service, pytest.mark.soak, pytest.mark.slow]

JOBIMPORTER = [sys.executable, "-m", "jobimporter.cli"]
IMPORTS = 20
EDITED_AT, RESTORED_AT, FLAKY_AT = 6, 7, 12  # which imports change something at the source


def main_feed_edited() -> bytes:
    jobs = load_real_jobs()[:50]
    edited = [changed_copy(job) for job in jobs[:ONLY_IN_MAIN]] + jobs[ONLY_IN_MAIN:]
    return render_feed(edited, title="Jobicy", link="https://jobicy.com")


def test_twenty_consecutive_imports_of_the_built_in_shape_all_finish(
    tmp_path: Path, feeds: FeedServer, other_host_feeds: FeedServer
) -> None:
    bodies = nine_feeds()
    for path, body in bodies.items():
        (other_host_feeds if path == HIGHER_ED_FEED else feeds).route(path, body=body)
    sources = tmp_path / "feeds.toml"
    servers = {path: other_host_feeds if path == HIGHER_ED_FEED else feeds for path in bodies}
    sources.write_text(
        "".join(f'[[feeds]]\nname = "{p}"\nurl = "{s.url(p)}"\n\n' for p, s in servers.items())
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBIMPORTER_")}
    for name in ("REDIS_URL", "DATABASE_URL"):
        env.pop(name, None)
    env.update(JOBIMPORTER_DATA_DIR=str(tmp_path / "data"), JOBIMPORTER_HOST_INTERVAL_S="0.1")
    items = {path: body.count(b"<item>") for path, body in bodies.items()}
    figures = []

    for number in range(1, IMPORTS + 1):
        if number == EDITED_AT:
            feeds.route(MAIN_FEED, body=main_feed_edited())
        elif number == RESTORED_AT:
            feeds.route(MAIN_FEED, body=bodies[MAIN_FEED])
        elif number == FLAKY_AT:
            feeds.sequence(MAIN_FEED, [{"status": 500}, {"body": bodies[MAIN_FEED]}])
        feeds.clear()
        started = time.monotonic()
        done = subprocess.run(
            [*JOBIMPORTER, "import", "--sources", str(sources), "--json"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        took = time.monotonic() - started
        assert done.returncode == 0, (number, done.stderr)
        run = ImportRun.model_validate(json.loads(done.stdout))
        assert run.status is RunStatus.COMPLETED, (number, [(e.name, e.status, e.error) for e in run.feeds])
        for entry in run.feeds:
            assert entry.status is EntryStatus.COMPLETED, (number, entry.name, entry.error)
            assert entry.total_fetched == items[entry.name] == entry.new + entry.updated + entry.unchanged
        new, updated = sum(e.new for e in run.feeds), sum(e.updated for e in run.feeds)
        assert new == (distinct_jobs(bodies.values()) if number == 1 else 0), number
        assert updated == (3 if number in (EDITED_AT, RESTORED_AT) else 0), number  # 3 edited, then back
        retries = len(feeds.requests) - (len(bodies) - 1)
        assert retries == (1 if number == FLAKY_AT else 0), number
        assert not re.search(r"gave up|✗", done.stderr), done.stderr
        figures.append(f"#{number}: {took:.1f} s, new {new}, updated {updated}, retries {retries}")
    print("\n".join(["soak:", *figures]))
