"""``jobimporter preview`` and ``POST /api/feeds/preview``: one feed fetched from the local feed
server, its format and profile, the first records as they would be stored (field by field, what is
empty), the source fields no field took, the items that would fail, and nothing written anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from lxml import etree

from fixtures.captures import CAPTURES

JOBIMPORTER = [sys.executable, "-m", "jobimporter.cli"]
NEUVOO = (CAPTURES / "neuvoo-talentcom-publisher-xml-2020-Bilal-Khan15.xml").read_bytes()
BROKEN = b'{"data": [{"title": "ok", "link": "https://x.example/1"}, {"link": "https://x.example/2"}, {"title": "dup", "link": "https://x.example/1"}]}'


def preview(tmp_path: Path, sources: str, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "feeds.toml"
    path.write_text(sources)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBIMPORTER_") and k != "DATABASE_URL"}
    env.update(JOBIMPORTER_DATA_DIR=str(tmp_path / "data"), COLUMNS="80")
    return subprocess.run(
        [*JOBIMPORTER, "preview", "--sources", str(path), *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def two_feeds(feeds: Any) -> str:
    feeds.route("/neuvoo.xml", body=NEUVOO, content_type="application/xml")
    feeds.route("/mapped.json", body=BROKEN, content_type="application/json")
    return f"""
[[feeds]]
name = "Neuvoo"
url = "{feeds.url("/neuvoo.xml")}"

[[feeds]]
name = "Mapped"
url = "{feeds.url("/mapped.json")}"
[feeds.mapping]
items = "$.data[*]"
fields = {{ title = "title", link = "link" }}
"""


def test_preview_shows_format_records_empty_fields_and_unmapped_sources(feeds: Any, tmp_path: Path) -> None:
    done = preview(tmp_path, two_feeds(feeds), "--limit", "2")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "format    job-xml    profile  none" in out
    assert "items     23 read, 0 would fail" in out
    assert "record 1 of 23" in out and "record 2 of 23" in out and "record 3 of" not in out
    first, second = out.split("record 2 of 23")
    jobs = list(etree.fromstring(NEUVOO).iter("job"))
    assert f"  title             {jobs[0].findtext('title')}\n" in first
    assert f"  title             {jobs[1].findtext('title')}\n" in second
    assert "  employment_types  full-time\n" in second  # "Plný úvazek"
    assert "\n  apply_url         —\n" in first and "  empty: apply_url," in first
    assert "source fields no field took (kept in extra):\n  cpc, currency" in out
    assert all(len(line) <= 80 for line in out.splitlines()), max(out.splitlines(), key=len)
    assert not (tmp_path / "data").exists()  # nothing written: no database, no spool


def test_preview_of_a_named_feed_lists_the_items_that_would_fail(feeds: Any, tmp_path: Path) -> None:
    done = preview(tmp_path, two_feeds(feeds), "--feed", "Mapped", "--json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert (answer["format"], answer["items_read"], len(answer["records"])) == ("mapped", 3, 1)
    assert answer["records"][0]["title"] == "ok"
    assert [(f["item"], f["reason"]) for f in answer["failures"]] == [
        ("https://x.example/2", "normalize: item #2: no title"),
        ("https://x.example/1", "duplicate: an earlier item in this feed has the same id"),
    ]


def test_preview_of_an_unknown_feed_or_an_unreadable_one(feeds: Any, tmp_path: Path) -> None:
    done = preview(tmp_path, two_feeds(feeds), "--feed", "Nope")
    assert done.returncode == 1
    assert (
        done.stderr.startswith("jobimporter: preview: no feed named 'Nope' in ")
        and "'Neuvoo', 'Mapped'" in done.stderr
    )
    feeds.route("/catalog.xml", body=b"<catalog><book/></catalog>", content_type="application/xml")
    sources = f'[[feeds]]\nname = "Books"\nurl = "{feeds.url("/catalog.xml")}"\n'
    unknown = preview(tmp_path, sources)
    assert unknown.returncode == 0
    assert "error     parse: XML with root <catalog>, not a known job format: give the" in unknown.stdout
