"""What a person reads: the summary and the history at 80 columns (and wider), logs in files.

Run as a user runs it (``jobimporter`` subprocesses, the embedded default); the output is read as
text. "Reads well" is made checkable: no line over the width, every feed name and every word of
every reason intact (a reason is never cut into one word per line, a column never into ``tr…``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.wpjm import load_real_jobs, render_feed
from plugins.feedserver import FeedServer

pytestmark = [pytest.mark.e2e, pytest.mark.external_service]

JOBIMPORTER = [sys.executable, "-m", "jobimporter.cli"]
NAMES = {
    "/good": "Jobicy: seller, full-time, France (a long name that wraps)",
    "/missing-feed-with-a-rather-long-path/and/more/of/it": "Gone",
    "/broken": "Broken XML",
}


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBIMPORTER_")}
    for name in ("REDIS_URL", "DATABASE_URL", "COLUMNS"):
        env.pop(name, None)
    # Interval 0: this is about the text printed; test_default_workload imports at the default.
    env.update(JOBIMPORTER_DATA_DIR=str(tmp_path / "data"), JOBIMPORTER_HOST_INTERVAL_S="0", **extra)
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*JOBIMPORTER, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def sources(tmp_path: Path, feeds: FeedServer) -> Path:
    feeds.route("/good", body=render_feed(load_real_jobs()[:4], title="g", link="https://jobicy.com"))
    feeds.route(
        "/broken", body=b"<rss><channel><item><title>a</title><link>https://x.example/1</link></item><ite"
    )
    path = tmp_path / "feeds.toml"
    path.write_text("".join(f'[[feeds]]\nname = "{n}"\nurl = "{feeds.url(p)}"\n\n' for p, n in NAMES.items()))
    return path


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("columns", [80, 160])
def test_the_summary_and_the_history_fit_the_width_and_keep_every_word(
    tmp_path: Path, sources: Path, columns: int
) -> None:
    env = env_for(tmp_path, COLUMNS=str(columns))
    summary = run(["import", "--sources", str(sources)], env).stdout
    as_json = json.loads(run(["history", "--json", "--limit", "1"], env).stdout)[0]

    lines = summary.splitlines()
    assert max(map(len, lines)) <= columns, summary
    words = summary.split()
    assert all(set(name.split()) <= set(words) for name in NAMES.values()), summary  # names wrap by word
    reasons = [e["error"] for e in as_json["feeds"] if e["error"]]
    assert len(reasons) == 2 and all(flat(reason) in flat(summary) for reason in reasons), summary
    assert lines[0].startswith(f"Run {as_json['run_id']} (cli): partial")
    total = next(line for line in lines if line.startswith("total"))
    assert re.search(rf"\b{sum(e['total_fetched'] for e in as_json['feeds'])}\b", total), total

    listing = run(["history"], env).stdout
    assert max(map(len, listing.splitlines())) <= columns, listing
    assert as_json["run_id"] in listing.split()  # the id whole, for copying
    for figure in ("partial", "cli", str(len(as_json["feeds"]))):
        assert figure in listing.split(), listing
    if columns >= 120:  # wide enough: one line per run
        assert len(listing.splitlines()) == 3, listing


def test_logs_in_a_file_are_plain_lines_and_json_on_request(tmp_path: Path, sources: Path) -> None:
    plain = run(
        ["import", "--sources", str(sources), "--json"], env_for(tmp_path, JOBIMPORTER_LOG_LEVEL="INFO")
    )
    lines = plain.stderr.splitlines()
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARNING) [\w.]+: .")
    assert len(lines) > 5 and all(stamp.match(line) for line in lines), plain.stderr
    assert any("finished: partial" in line for line in lines)

    structured = run(
        ["import", "--sources", str(sources), "--json"],
        env_for(tmp_path, JOBIMPORTER_LOG_LEVEL="INFO", JOBIMPORTER_LOG_FORMAT="json"),
    )
    records = [json.loads(line) for line in structured.stderr.splitlines()]
    assert records and all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    assert all(r["time"].endswith("Z") for r in records)
    finished = [r for r in records if "finished" in r["message"] and r["logger"] == "jobimporter.runs"]
    assert finished and finished[0]["run_id"].startswith("run_")  # context keys are fields


def test_help_shows_the_sources_table_syntax(tmp_path: Path) -> None:
    done = run(["import", "--help"], env_for(tmp_path, COLUMNS="80"))
    assert "[[feeds]]" in done.stdout
    assert max(map(len, done.stdout.splitlines())) <= 80
