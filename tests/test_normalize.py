"""The normalize stage: text cleaning, identity, URLs, dates, money, sanitizing, the content hash."""

from __future__ import annotations

import email.utils
import hashlib
import io
import json
import random
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import nh3
import pytest

from fixtures import hostile_html, wpjm
from jobimporter.errors import ItemError
from jobimporter.models import JobRecord, RawItem
from jobimporter.normalize import (
    canonical_job_type,
    content_hash,
    identify,
    normalize,
    parse_amount,
    parse_date,
    record_key,
    sanitize_html,
)
from jobimporter.parse import parse_feed

SOURCE = "jobicy.com"
BASE = "https://jobicy.com/?feed=job_feed"
FEEDS = Path(__file__).parent / "fixtures" / "feeds"


def norm(item: RawItem) -> JobRecord:
    return normalize(item, source=SOURCE, base_url=BASE)


def item(**fields: object) -> RawItem:
    values: dict[str, object] = {"position": 1, "title": "Engineer", "guid": "g-1"}
    values.update(fields)
    return RawItem(**values)  # type: ignore[arg-type]


# ---------------------------------------------------------------- text


def test_html_entities_are_decoded_exactly_once() -> None:
    record = norm(
        item(
            title="Creative Lead - Web &amp; Brand &amp;amp; more",
            company="Acme &amp; Söhne",
            categories=("Admin &amp; Operations",),
            locations=("Z&uuml;rich",),
            author="HR &#8211; team",
        )
    )
    assert record.title == "Creative Lead - Web & Brand &amp; more"
    assert record.company == "Acme & Söhne"
    assert record.categories == ["Admin & Operations"]
    assert record.locations == ["Zürich"]
    assert record.extra["author"] == "HR – team"


def test_whitespace_is_trimmed_and_collapsed_nbsp_included() -> None:
    record = norm(item(title="  Data\u00a0&nbsp;Engineer\n\t (m/w/d) ", company=" \n "))
    assert record.title == "Data Engineer (m/w/d)"
    assert record.company is None


def test_lists_are_deduplicated_in_order() -> None:
    record = norm(item(categories=("Data", "Ops", "data", " Data "), locations=("USA", "Canada", "USA")))
    assert record.categories == ["Data", "Ops"]
    assert record.locations == ["USA", "Canada"]


JOB_TYPES = [
    ("Full-Time", "full-time"),
    ("Full Time", "full-time"),
    ("full_time", "full-time"),
    ("FULL TIME", "full-time"),
    ("Fulltime", "full-time"),
    ("part time", "part-time"),
    ("Part-Time", "part-time"),
    ("Contract", "contract"),
    ("Contractor", "contract"),
    ("Freelance", "freelance"),
    ("Internship", "internship"),
    ("intern", "internship"),
    ("Temporary", "temporary"),
    ("Temp", "temporary"),
    ("Volunteer", "volunteer"),
    ("Per Diem / On Call", "per-diem-on-call"),
    ("  ", None),
]


@pytest.mark.parametrize(("raw", "expected"), JOB_TYPES)
def test_job_type_spelling(raw: str, expected: str | None) -> None:
    assert canonical_job_type(raw) == expected


def test_job_types_are_canonical_and_unique() -> None:
    assert norm(item(job_types=("Full Time", "full-time", "Contract", ""))).job_types == [
        "full-time",
        "contract",
    ]


# ---------------------------------------------------------------- identity


def test_identity_prefers_the_trimmed_guid() -> None:
    record = norm(
        item(guid="  https://jobicy.com/?post_type=job_listing&p=1 ", link="https://jobicy.com/jobs/1")
    )
    assert record.external_id == "https://jobicy.com/?post_type=job_listing&p=1"
    assert record.key == hashlib.sha256(f"{SOURCE}\n{record.external_id}".encode()).hexdigest()[:32]
    assert record.key == record_key(SOURCE, record.external_id)


def test_identity_falls_back_to_the_absolute_link() -> None:
    assert norm(item(guid=None, link="/jobs/7")).external_id == "https://jobicy.com/jobs/7"


def test_identity_falls_back_to_a_hash_of_title_and_content() -> None:
    first = norm(item(guid=" ", link=None, content_html="<p>Body</p>"))
    again = norm(item(guid=None, link="javascript:alert(1)", content_html="<p>Body</p>", position=9))
    assert first.external_id.startswith("sha256:") and len(first.external_id) == 7 + 64
    assert again.external_id == first.external_id  # position is not part of identity


def test_same_guid_from_different_sources_gives_different_keys() -> None:
    one = normalize(item(), source="jobicy.com", base_url=BASE)
    two = normalize(item(), source="example.org", base_url=BASE)
    assert one.external_id == two.external_id and one.key != two.key


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (item(title=None, position=7), "normalize: item #7: no title"),
        (item(title=" &nbsp; ", position=3), "normalize: item #3: no title"),
        (item(guid=None, link=None, position=4), "normalize: item #4: no guid, no link and no content"),
    ],
)
def test_invalid_items_fail_alone_with_a_reason(raw: RawItem, reason: str) -> None:
    with pytest.raises(ItemError, match=f"^{reason}"):
        norm(raw)


def test_oversized_values_are_bounded_not_fatal() -> None:
    record = norm(item(title="x" * 5000, guid="g" * 5000))
    assert len(record.title) == 1000
    assert record.external_id == "sha256:" + hashlib.sha256(("g" * 5000).encode()).hexdigest()


def test_bad_source_is_an_item_error() -> None:
    with pytest.raises(ItemError, match="^normalize: item #1: source"):
        normalize(item(), source="", base_url=BASE)


# ---------------------------------------------------------------- urls and html


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("https://jobicy.com/jobs/1", "https://jobicy.com/jobs/1"),
        ("  /jobs/2 ", "https://jobicy.com/jobs/2"),
        ("jobs/3", "https://jobicy.com/jobs/3"),
        ("//cdn.example.org/4", "https://cdn.example.org/4"),
        ("javascript:alert(1)", None),
        ("mailto:hr@example.org", None),
        ("http://[not-an-ip]/x", None),
    ],
)
def test_links_are_absolutized_and_non_http_dropped(link: str, expected: str | None) -> None:
    record = norm(item(link=link, logo_url=link))
    assert (record.url, record.logo_url) == (expected, expected)
    if expected is None:
        assert record.extra["dropped_urls"] == [link.strip()] * 2


def test_description_is_sanitized() -> None:
    record = norm(
        item(content_html='<p onclick="x()">Hi &amp; <b>bye</b></p><script>alert(1)</script><img src=x onerror=alert(1)>'
             '<a href="/apply">Apply</a>')
    )  # fmt: skip
    assert "<script" not in record.description_html
    assert "onerror" not in record.description_html and "onclick" not in record.description_html
    assert '<a href="https://jobicy.com/apply"' in record.description_html
    assert record.description_text == "Hi & bye Apply"


@pytest.mark.parametrize("case", hostile_html.CASES, ids=[case.name for case in hostile_html.CASES])
def test_hostile_markup_is_made_inert_in_the_description_and_the_summary(case: hostile_html.Hostile) -> None:
    assert hostile_html.active_content(case.html)  # the check sees the attack in the raw markup
    record = norm(item(content_html=f"<p>Role</p>{case.html}", summary=f"<p>Excerpt</p>{case.html}"))
    assert hostile_html.active_content(record.description_html) == [], record.description_html
    assert hostile_html.active_content(record.extra["summary_html"]) == [], record.extra["summary_html"]
    assert case.kept in record.description_text and record.description_text.startswith("Role")
    assert "alert(" not in record.description_text  # a script's source never becomes text


def test_description_text_separates_blocks() -> None:
    record = norm(
        item(content_html="<h2>Role</h2><p>Build&nbsp;things.</p><ul><li>Python</li><li>SQL</li></ul>")
    )
    assert record.description_text == "Role Build things. Python SQL"


def test_summary_is_the_description_when_there_is_no_content() -> None:
    record = norm(item(summary="Only an excerpt &amp; nothing else"))
    assert record.description_html == "Only an excerpt &amp; nothing else"
    assert record.description_text == "Only an excerpt & nothing else"
    assert "summary_html" not in record.extra


def test_summary_is_kept_in_extra_when_content_exists() -> None:
    record = norm(item(summary="Short", content_html="<p>Long</p>"))
    assert (record.description_text, record.extra["summary_html"]) == ("Long", "Short")


# ---------------------------------------------------------------- dates

DATES = [
    ("Sun, 08 Dec 2024 00:38:13 +0000", datetime(2024, 12, 8, 0, 38, 13, tzinfo=UTC)),
    ("Sun, 08 Dec 2024 00:38:13 GMT", datetime(2024, 12, 8, 0, 38, 13, tzinfo=UTC)),
    ("Sun, 08 Dec 2024 00:38:13 -0000", datetime(2024, 12, 8, 0, 38, 13, tzinfo=UTC)),
    ("Wed, 10 Jun 2026 17:04:44 EDT", datetime(2026, 6, 10, 21, 4, 44, tzinfo=UTC)),
    ("Tue, 10 Dec 2024 17:04:44 EST", datetime(2024, 12, 10, 22, 4, 44, tzinfo=UTC)),
    ("Tue, 10 Dec 2024 17:04:44 PDT", datetime(2024, 12, 11, 0, 4, 44, tzinfo=UTC)),
    ("10 Dec 2024 17:04 +0530", datetime(2024, 12, 10, 11, 34, tzinfo=UTC)),
    ("2026-07-10T20:00:05+00:00", datetime(2026, 7, 10, 20, 0, 5, tzinfo=UTC)),
    ("2026-07-10T20:00:05Z", datetime(2026, 7, 10, 20, 0, 5, tzinfo=UTC)),
    ("2026-07-10T22:00:05.123+02:00", datetime(2026, 7, 10, 20, 0, 5, 123000, tzinfo=UTC)),
    ("2024-12-07 04:10:26", datetime(2024, 12, 7, 4, 10, 26, tzinfo=UTC)),
    (" 2024-12-07 ", datetime(2024, 12, 7, tzinfo=UTC)),
    ("not a date", None),
    ("Mon, 32 Dec 2024 00:00:00 +0000", None),
    ("", None),
]


@pytest.mark.parametrize(("raw", "expected"), DATES)
def test_parse_date(raw: str, expected: datetime | None) -> None:
    assert parse_date(raw) == expected


# RSS's usual spelling takes a fast path in parse_date; each of these must read exactly as
# email.utils reads it (what the general path uses), edge values and out-of-range ones included.
RFC822_SPELLINGS = [
    "Mon, 03 Aug 2026 18:44:55 +0000",
    "Mon, 03 Aug 2026 18:44:55 -0000",
    "Mon, 03 Aug 2026 18:44:55 +0530",
    "Mon, 03 Aug 2026 02:15:00 -0800",
    "Thu, 31 Dec 2026 23:59:59 -2359",
    "Fri, 01 Jan 2027 00:00:00 +2359",
    "03 Aug 2026 18:44:55 GMT",
    "3 Aug 2026 18:44:55 UT",
    "Mon, 3 Aug 2026 18:44:55 UTC",
    "Mon, 03 Aug 2026 18:44:55 Z",
    "Sat, 29 Feb 2028 12:00:00 +0100",
    "Sun, 29 Feb 2026 12:00:00 +0100",  # no such day
    "Mon, 03 Aug 2026 24:00:00 +0000",
    "Mon, 03 Aug 0999 18:44:55 +0000",  # three-digit years are email.utils's to read
    "Mon, 03 Aug 0026 18:44:55 +0000",
    "Sat, 01 Jan 0001 00:30:00 +0100",
    "Fri, 31 Dec 9999 23:30:00 -0100",  # past year 9999 in UTC
]


def _as_email_utils_reads_it(raw: str) -> datetime | None:
    try:
        parsed = email.utils.parsedate_to_datetime(raw)
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    try:
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:
        return None


@pytest.mark.parametrize("raw", RFC822_SPELLINGS)
def test_rfc822_dates_read_as_email_utils_reads_them(raw: str) -> None:
    assert parse_date(raw) == _as_email_utils_reads_it(raw)


def test_unparseable_date_is_kept_raw_not_fatal() -> None:
    record = norm(item(published=" someday soon "))
    assert record.published_at is None
    assert record.extra["published_raw"] == "someday soon"


def test_updated_stands_in_for_a_missing_published() -> None:
    assert norm(item(updated="2024-12-08T10:00:00Z")).published_at == datetime(2024, 12, 8, 10, tzinfo=UTC)


# ---------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("67500", 67500.0),
        ("204400.5", 204400.5),
        ("$1,200", 1200.0),
        ("€ 50.000,00", 50000.0),
        ("1.5e+05", 150000.0),
        ("-5", None),
        ("nan", None),
        ("inf", None),
        ("abc", None),
        (None, None),
    ],
)
def test_parse_amount(raw: str | None, expected: float | None) -> None:
    assert parse_amount(raw) == expected


def test_salary_fields() -> None:
    record = norm(
        item(salary_min="122,600", salary_max="$204,400", salary_currency=" usd ", salary_period="yearly")
    )
    assert (record.salary_min, record.salary_max, record.salary_currency, record.salary_period) == (
        122600.0, 204400.0, "USD", "year",
    )  # fmt: skip
    assert norm(item(salary_min="90", salary_max="80")).salary_min == 90.0  # kept as given


# ---------------------------------------------------------------- content hash


def test_content_hash_is_deterministic_and_covers_the_fields() -> None:
    base = item(content_html="<p>Body</p>", categories=("A", "B"), published="2024-12-07 04:10:26")
    first, again = norm(base), norm(replace(base, position=42))
    assert first == again
    assert len(first.content_hash) == 32
    changed = [
        norm(replace(base, content_html="<p>Body!</p>")),
        norm(replace(base, categories=("B", "A"))),
        norm(replace(base, published="2024-12-07 04:10:27")),
        norm(replace(base, extra={"job_level": "Senior"})),
    ]
    assert all(c.key == first.key and c.content_hash != first.content_hash for c in changed)


def stdlib_content_hash(fields: dict[str, object]) -> str:
    """The content hash as stored since the first version: sha256 of the stdlib's canonical JSON."""
    body = {k: v for k, v in fields.items() if k not in ("key", "content_hash", "raw_hash")}
    canonical = json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=datetime.isoformat
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def test_the_content_hash_stays_what_the_stdlibs_canonical_json_gives() -> None:
    """Hashes written by earlier versions must still match, or every stored job would read as updated
    on the first import after an upgrade: floats of every shape (exponents too), texts with control
    characters and any Unicode, lists and nested extras, datetimes."""
    rng = random.Random(12)
    alphabet = [
        chr(c) for c in (*range(0x20), *range(0x20, 0x7F, 7), 0x7F, 0x85, 0xA0, 0xE9, 0x2028, 0x1F600)
    ]
    floats = [0.0, 67500.0, 1e-4, 5e-5, 1.5e-7, 1e15, 9999999999999998.0, 1e16, 2.5e22, 123.456]
    for case in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        fields: dict[str, object] = {
            "title": text, "locations": [text, "Remote"], "salary_min": rng.choice(floats),
            "salary_max": rng.choice([None, *floats]), "extra": {"k": text, "dropped_urls": [text]},
            "published_at": datetime(2024, 1, 1, tzinfo=UTC).replace(microsecond=case % 7 * 1000),
            "key": "not content", "content_hash": "not content",
        }  # fmt: skip
        assert content_hash(fields) == stdlib_content_hash(fields), fields


def test_a_plain_text_skips_the_sanitizer_and_reads_as_the_sanitizer_would_give_it() -> None:
    """A description without markup (many JSON APIs send plain text) is not sanitized: it must come
    out exactly as the sanitizer would give it, so a record reads and hashes the same either way."""
    rng = random.Random(5)
    alphabet = [chr(c) for c in (*range(1, 0x7F), 0x85, 0xA0, 0xE9, 0xFEFF, 0xFFFE, 0x2028, 0x1F600)]
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
        sanitized = nh3.clean(text).strip() if text.strip() else ""  # a blank text is "" either way
        assert sanitize_html(text, BASE) == sanitized, repr(text)


def test_a_lone_surrogate_becomes_a_replacement_character_and_never_fails_the_item() -> None:
    """A JSON feed may say ``"\\ud800"`` alone, which no UTF-8 text holds (the sanitizer and the hashes
    refuse it): the item is imported with U+FFFD in its place, under the same identity every time."""
    lone = item(guid="g-\ud800", title="Dev\udfff", content_html="<p>a\ud800b</p>", locations=("X\ud801",))
    record = norm(lone)
    identity = identify(lone, source=SOURCE, base_url=BASE)
    assert (record.external_id, record.title, record.locations) == ("g-\ufffd", "Dev\ufffd", ["X\ufffd"])
    assert record.description_html == "<p>a\ufffdb</p>"
    assert (identity.key, identity.external_id, identity.raw_hash) == (
        record.key, record.external_id, record.raw_hash
    )  # fmt: skip
    assert norm(lone) == record


def test_record_survives_a_json_round_trip() -> None:
    record = norm(item(published="Sun, 08 Dec 2024 00:38:13 +0000", salary_min="1", content_html="<p>x</p>"))
    assert JobRecord.model_validate_json(record.model_dump_json()) == record


# ---------------------------------------------------------------- real data


def normalized(body: bytes) -> list[JobRecord]:
    return [norm(raw) for raw in parse_feed(io.BytesIO(body))]


def test_every_real_job_normalizes() -> None:
    for path in sorted((FEEDS / "jobicy-api").glob("*.json")):
        for record in normalized(path.read_bytes()):
            assert "&amp;" not in record.title and all("&amp;" not in c for c in record.categories)
            assert record.external_id.startswith("https://jobicy.com/?post_type=job_listing&p=")
            assert record.published_at is not None and record.published_at.tzinfo is UTC
            assert record.url is not None and record.url.startswith("https://jobicy.com/jobs/")
            assert set(record.job_types) <= {"full-time", "part-time", "contract"}


def test_rss_and_json_of_the_same_job_agree() -> None:
    jobs = wpjm.load_real_jobs()
    from_rss = normalized(wpjm.render_feed(jobs, title="Jobicy", link="https://jobicy.com"))
    from_json = {
        r.key: r for path in (FEEDS / "jobicy-api").glob("*.json") for r in normalized(path.read_bytes())
    }
    assert len(from_rss) == 80
    for record in from_rss:
        twin = from_json[record.key]
        same = (
            "external_id",
            "title",
            "company",
            "categories",
            "job_types",
            "url",
            "published_at",
            "description_html",
        )
        assert {f: getattr(record, f) for f in same} == {f: getattr(twin, f) for f in same}


def test_changed_copy_changes_the_hash_and_keeps_the_key() -> None:
    job = wpjm.load_real_jobs()[0]
    before, after = (
        normalized(wpjm.render_feed([j], title="Jobicy", link="https://jobicy.com"))[0]
        for j in (job, wpjm.changed_copy(job))
    )
    assert before.key == after.key and before.content_hash != after.content_hash


def test_higheredjobs_dates_in_us_zones() -> None:
    records = normalized((FEEDS / "higheredjobs-category-trimmed.xml").read_bytes())
    assert records[0].published_at == datetime(2026, 6, 10, 21, 4, 44, tzinfo=UTC)
    assert records[1].external_id == "https://www.higheredjobs.com/details.cfm?JobCode=179485814"


def test_hostile_items_only_ever_raise_item_errors() -> None:
    rng = random.Random(7)
    pieces = ["", " ", "&", "&amp;", "&#0;", "&#x110000;", "\x00", "\x0b", "<script>", "<p>", "]]>", "javascript:",
              "//", "http://[::1", "https://a/b", "\u00a0", "\ufffe", "1e999", "-1", "nan", "2024-13-45", "+9999"]  # fmt: skip

    def text() -> str | None:
        return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 5))) or None

    failures = 0
    for position in range(1, 501):
        raw = RawItem(
            position=position, guid=text(), link=text(), title=text(), summary=text(), content_html=text(),
            published=text(), company=text(), locations=(text() or "",), job_types=(text() or "",),
            salary_min=text(), salary_max=text(), salary_currency=text(), logo_url=text(), extra={"k": text() or ""},
        )  # fmt: skip
        try:
            norm(raw)
        except ItemError as exc:
            assert str(exc).startswith(f"normalize: item #{position}: ")
            failures += 1
    assert 0 < failures < 500


def test_identify_agrees_with_normalize_on_every_real_item() -> None:
    """The fast path must name items exactly as the full one does, or a job would be stored twice."""
    from fixtures.wpjm import load_real_jobs, render_feed
    from jobimporter.normalize import identify
    from jobimporter.parse import parse_feed

    body = render_feed(load_real_jobs(), title="t", link="https://jobicy.com")
    items = list(parse_feed(io.BytesIO(body)))
    assert len(items) > 50
    for item in items:
        identity = identify(item, source="jobicy.com", base_url="https://jobicy.com/")
        record = normalize(item, source="jobicy.com", base_url="https://jobicy.com/")
        assert (identity.key, identity.external_id, identity.raw_hash) == (
            record.key,
            record.external_id,
            record.raw_hash,
        )


def test_raw_hash_changes_with_any_raw_field_and_with_the_base_url() -> None:
    from dataclasses import replace

    from jobimporter.normalize import raw_hash

    item = RawItem(position=1, guid="g", title="T", content_html="<p>x</p>", extra={"a": "1"})
    digest = raw_hash(item, "https://a.example/")
    assert raw_hash(replace(item, position=9), "https://a.example/") == digest  # position is not content
    for changed in (
        replace(item, content_html="<p>y</p>"),
        replace(item, extra={"a": "2"}),
        replace(item, title="T2"),
    ):
        assert raw_hash(changed, "https://a.example/") != digest
    assert raw_hash(item, "https://b.example/") != digest


def test_raw_hash_frames_its_texts_so_moving_text_between_fields_changes_it() -> None:
    from dataclasses import replace

    from jobimporter.normalize import raw_hash

    item = RawItem(position=1, guid="g", title="ab", summary="c", locations=("x",))
    digest = raw_hash(item, "https://a.example/")
    for other in (
        replace(item, title="a", summary="bc"),  # same characters, other split
        replace(item, summary=None, content_html="c"),  # same text, other field
        replace(item, summary=""),  # empty is not missing
        replace(item, locations=(), categories=("x",)),  # same value, other list
        replace(item, locations=("x", "")),
        replace(item, extra={"x": ""}, locations=()),
    ):
        assert raw_hash(other, "https://a.example/") != digest
    lone_surrogate = replace(item, title="a\ud800b")  # a JSON feed may carry one
    assert raw_hash(lone_surrogate, "https://a.example/") != digest


@pytest.mark.parametrize(
    "title", [None, "", "   ", "\xa0", "&nbsp;", " &#32; ", "&amp;", "a", " a ", "&bogus;", "\u2003x"]
)
@pytest.mark.parametrize(
    ("guid", "link", "content"),
    [("g", None, None), (" ", "/jobs/1", None), (None, "mailto:x@y", "<p>x</p>"), (None, None, " ")],
)
def test_identify_agrees_with_normalize_on_titles_and_fallback_ids(
    title: str | None, guid: str | None, link: str | None, content: str | None
) -> None:
    """identify checks the title without cleaning it, and resolves the link only without a guid."""
    from jobimporter.normalize import identify

    item = RawItem(position=3, guid=guid, link=link, title=title, content_html=content)
    try:
        record = normalize(item, source="s", base_url="https://a.example/")
    except ItemError as exc:
        with pytest.raises(ItemError, match=re.escape(str(exc))):
            identify(item, source="s", base_url="https://a.example/")
        return
    identity = identify(item, source="s", base_url="https://a.example/")
    assert (identity.key, identity.external_id, identity.raw_hash) == (
        record.key,
        record.external_id,
        record.raw_hash,
    )
