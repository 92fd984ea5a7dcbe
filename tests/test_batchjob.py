"""What a batch job makes of the items the feed job queued: raw item rows in, records and per-item failures out.

The feed job sends each changed item raw (``RawItem.to_row``, with its identity); the batch job
normalizes it. These tests feed the batch job's decoding and normalizing (``records_of``) with what
crossed Redis (JSON), and check that a bad item fails alone, with its reason, and never its batch.
"""

from __future__ import annotations

import io
import json
from dataclasses import replace
from typing import Any

import pytest

from fixtures import hostile_html, wpjm
from jobimporter.batchjob import records_of
from jobimporter.models import JobRecord, RawItem
from jobimporter.normalize import NORMALIZER_VERSION, identify, normalize, raw_hash
from jobimporter.parse import parse_feed

SOURCE = "jobicy.com"
BASE = "https://jobicy.com/?feed=job_feed"


def real_items(count: int = 12) -> list[RawItem]:
    body = wpjm.render_feed(wpjm.load_real_jobs()[:count], title="t", link=wpjm.SITE_LINK)
    return list(parse_feed(io.BytesIO(body)))


def entry(item: RawItem) -> list[Any]:
    """An item as the feed job queues it: identity, then the raw item's row."""
    identity = identify(item, source=SOURCE, base_url=BASE)
    return [identity.external_id, identity.key, identity.raw_hash, item.to_row()]


def payload(entries: list[Any], *, version: str = NORMALIZER_VERSION) -> dict[str, Any]:
    """A batch job's data after its trip through Redis (JSON both ways)."""
    data = {"source": SOURCE, "base_url": BASE, "normalizer": version, "items": entries, "known": []}
    loaded: dict[str, Any] = json.loads(json.dumps(data))
    return loaded


def test_a_raw_item_survives_its_trip_as_a_row() -> None:
    items = [*real_items(), *(hostile_item(case) for case in hostile_html.CASES)]
    for item in items:
        assert RawItem.from_row(json.loads(json.dumps(item.to_row()))) == item


def hostile_item(case: hostile_html.Hostile) -> RawItem:
    return RawItem(
        position=3, guid="h", title="Hostile", content_html=case.html, locations=("A", "B"),
        job_types=("Full-Time",), extra={"k": "v"},
    )  # fmt: skip


@pytest.mark.parametrize(
    "row",
    [
        "not a list",
        [1, "too short"],
        [None] * 22,  # position must be a number
        [1, *([7] * 20), {}],  # texts that are numbers
        [1, *([None] * 9), "not a list", *([None] * 10), {}],  # locations
        [1, *([None] * 9), [], [], [], *([None] * 8), {"k": 1}],  # extra maps to a number
    ],
)
def test_a_row_that_is_not_a_raw_item_is_refused(row: Any) -> None:
    with pytest.raises(TypeError):
        RawItem.from_row(row)


def test_a_batch_normalizes_its_items_exactly_as_normalize_does() -> None:
    items = real_items()
    records, failures = records_of(payload([entry(item) for item in items]))
    assert failures == []
    assert records == [normalize(item, source=SOURCE, base_url=BASE) for item in items]


def test_an_item_that_fails_to_normalize_fails_alone_with_its_reason() -> None:
    """A feed job identifies items before queueing them, so a title-less one is normally caught there;
    one that reaches a batch job anyway (a feed job of another version queued it) fails alone."""
    good = real_items(5)
    untitled = replace(good[0], guid="no-title", title="   ", position=17)
    entries = [entry(item) for item in good]
    bad = ["no-title", "k" * 32, "r" * 32, untitled.to_row()]
    records, failures = records_of(payload([*entries[:2], bad, *entries[2:], ["a", "b"]]))

    assert [r.external_id for r in records] == [e[0] for e in entries]
    assert [(f.external_id, f.reason) for f in failures] == [
        ("no-title", "normalize: item #17: no title"),
        ("a", "invalid: batch item: not an [external_id, key, raw_hash, item] entry"),
    ]


def test_a_malformed_row_fails_alone_labelled_by_its_id() -> None:
    good = entry(real_items(1)[0])
    broken = ["ext-9", "k" * 32, "r" * 32, [1, "short"]]
    records, failures = records_of(payload([good, broken]))
    assert len(records) == 1
    assert [(f.external_id, f.reason) for f in failures] == [
        ("ext-9", "invalid: batch item: not a raw item row of 22 values")
    ]


def test_a_batch_from_a_feed_job_of_another_normalizer_version_gets_this_versions_raw_hash() -> None:
    """In a rolling upgrade a feed job of the old version may queue items a new worker normalizes:
    the stored raw hash must be the new version's, or the old one would keep matching."""
    item = real_items(1)[0]
    stale = entry(item)
    stale[2] = "0" * 32
    (record,), _ = records_of(payload([stale], version="2"))
    assert record.raw_hash == raw_hash(item, BASE) != "0" * 32
    (same,), _ = records_of(payload([stale]))
    assert same.raw_hash == "0" * 32  # the same version: the feed job's digest is taken as it is


def test_a_batch_queued_by_an_earlier_version_carries_records_and_is_validated() -> None:
    """A dead letter of the version before this one, retried after the upgrade, holds records."""
    record = normalize(real_items(1)[0], source=SOURCE, base_url=BASE)
    broken = {**record.model_dump(mode="json"), "key": "short", "external_id": "x-1"}
    data = json.loads(json.dumps({"items": [record.model_dump(mode="json"), broken], "known": []}))
    records, failures = records_of(data)
    assert records == [JobRecord.model_validate(record.model_dump(mode="json"))]
    assert [f.external_id for f in failures] == ["x-1"] and failures[0].reason.startswith("invalid: key")
