"""The parse stage: format detection, RSS/Atom/RDF/jobicy JSON mapping, safety, streaming.

Each edge case carries its own small inline document (miniflux's habit); real captures live in
``tests/fixtures/feeds/`` and the WP Job Manager RSS is rendered from them by ``fixtures.wpjm``.
"""

from __future__ import annotations

import io
import itertools
import json
import random
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures import wpjm
from jobimporter.errors import FeedError, FeedParseError, NotAFeed
from jobimporter.models import FeedFormat, RawItem
from jobimporter.parse import detect_format, parse_feed
from jobimporter.parse import rss as rss_module
from jobimporter.parse import xml as xml_module
from jobimporter.parse.detect import HEAD_SIZE

FEEDS = Path(__file__).parent / "fixtures" / "feeds"
JOBICY_FILES = sorted((FEEDS / "jobicy-api").glob("*.json"))

WP_NAMESPACES = (
    'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:atom="http://www.w3.org/2005/Atom" '
    'xmlns:media="http://search.yahoo.com/mrss/" '
)


def rss(
    items: str, *, namespaces: str = WP_NAMESPACES, prolog: str = '<?xml version="1.0" encoding="UTF-8"?>'
) -> bytes:
    return (
        f'{prolog}<rss version="2.0" {namespaces}><channel><title>t</title>{items}</channel></rss>'.encode()
    )


def parse(body: bytes, fmt: FeedFormat = FeedFormat.AUTO) -> list[RawItem]:
    return list(parse_feed(io.BytesIO(body), format=fmt))


def only(body: bytes) -> RawItem:
    items = parse(body)
    assert len(items) == 1, items
    return items[0]


# ---------------------------------------------------------------- detection

DETECT_CASES = [
    ("rss", rss("<item><title>a</title></item>"), FeedFormat.RSS),
    (
        "bom-comment-pi",
        b"\xef\xbb\xbf\n <?xml version='1.0'?>\n<!-- hi -->\n<?xml-stylesheet href='x'?>\n<rss/>",
        FeedFormat.RSS,
    ),
    (
        "rss091-doctype",
        b'<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" "x.dtd"><rss/>',
        FeedFormat.RSS,
    ),
    ("rdf", b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/>', FeedFormat.RSS),
    ("atom", b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"/>', FeedFormat.ATOM),
    ("atom-prefixed", b'<a:feed xmlns:a="http://www.w3.org/2005/Atom"/>', FeedFormat.ATOM),
    ("utf16", '<?xml version="1.0" encoding="UTF-16"?><rss/>'.encode("utf-16"), FeedFormat.RSS),
    ("jobicy", b'  {"apiVersion": "2.0", "jobCount": 0, "jobs": []}', FeedFormat.JOBICY_JSON),
]


@pytest.mark.parametrize(
    ("body", "expected"), [c[1:] for c in DETECT_CASES], ids=[c[0] for c in DETECT_CASES]
)
def test_detect_format(body: bytes, expected: FeedFormat) -> None:
    assert detect_format(body) is expected


NOT_A_FEED_CASES = [
    (
        "captcha",
        b"<!DOCTYPE html>\n<html><head><title>Just a moment...</title></head><body/></html>",
        "(Just a moment...)",
    ),
    (
        "xhtml",
        b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>Login &amp; more</title>',
        "(Login & more)",
    ),
    ("html-no-title", b"<html><body>blocked</body></html>", "looks like an HTML page"),
    ("fragment", b"\n\n<div>Access denied</div>", "looks like an HTML page"),
    ("empty", b"", "empty"),
    ("blank", b"  \n\t ", "empty"),
    (
        "sitemap",
        b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"/>',
        "XML with root <urlset>, not a known job format: give the feed a field mapping",
    ),
    ("json-no-jobs", b'{"data": []}', "JSON, but no list of jobs found (top-level keys: data)"),
    ("json-array", b"[1, 2]", "a JSON array of 2 elements, not a known job format"),
    ("text", b"Service Unavailable", "neither XML nor JSON"),
]


@pytest.mark.parametrize(
    ("body", "reason"), [c[1:] for c in NOT_A_FEED_CASES], ids=[c[0] for c in NOT_A_FEED_CASES]
)
def test_detect_refuses_what_is_not_a_feed(body: bytes, reason: str) -> None:
    with pytest.raises(NotAFeed, match="^parse: ") as caught:
        detect_format(body)
    assert reason in str(caught.value)


def test_html_page_through_parse_feed_names_its_title() -> None:
    page = b"<!doctype html><html><head><title>Attention Required! | Cloudflare</title></head></html>"
    with pytest.raises(NotAFeed, match=r"looks like an HTML page \(Attention Required! \| Cloudflare\)"):
        parse(page)


def test_unknown_root_with_html_content_type_is_an_html_page() -> None:
    prolog_only = b"<?xml version='1.0'?>" + b"<!-- padding -->" * 5000  # the root is past the head
    with pytest.raises(NotAFeed, match="HTML page"):
        detect_format(prolog_only, content_type="text/html; charset=utf-8")
    with pytest.raises(NotAFeed, match="no root element"):
        detect_format(prolog_only, content_type="application/xml")


# ---------------------------------------------------------------- RSS 2.0 and WP Job Manager

WPJM_ITEM = """
<item>
  <title>Senior Engineer &#8211; Backend &amp;amp; Data</title>
  <link>https://euremotejobs.com/job/senior-engineer/</link>
  <dc:creator><![CDATA[EU Remote Jobs]]></dc:creator>
  <pubDate>Thu, 04 Sep 2026 09:15:02 +0000</pubDate>
  <guid isPermaLink="false">https://euremotejobs.com/?post_type=job_listing&#038;p=4242</guid>
  <description><![CDATA[We are hiring &amp; growing. Über&nbsp;cool [&#8230;]]]></description>
  <content:encoded><![CDATA[<p>Full <b>body</b> &amp; more</p>]]></content:encoded>
  <jl:location><![CDATA[Berlin, Germany]]></jl:location>
  <jl:job_type><![CDATA[Full Time, Contract]]></jl:job_type>
  <jl:job_category><![CDATA[Admin &amp; Operations, Data, Engineering]]></jl:job_category>
  <jl:company><![CDATA[Acme &amp; Söhne]]></jl:company>
  <jl:salary><![CDATA[€50k – €70k per year]]></jl:salary>
  <media:content url="https://euremotejobs.com/logo.png" medium="image"/>
  <post-id xmlns="com-wordpress:feed-additions:1">4242</post-id>
  <slash:comments xmlns:slash="http://purl.org/rss/1.0/modules/slash/">0</slash:comments>
</item>"""


def test_wpjm_item_maps_every_field_prefix_independently() -> None:
    # The site's own URI under an unusual prefix: matched by namespace, not by "job_listing:".
    item = only(rss(WPJM_ITEM, namespaces=WP_NAMESPACES + 'xmlns:jl="https://euremotejobs.com"'))
    assert item.position == 1
    assert item.title == "Senior Engineer – Backend &amp; Data"  # XML-decoded only
    assert item.link == "https://euremotejobs.com/job/senior-engineer/"
    assert item.guid == "https://euremotejobs.com/?post_type=job_listing&p=4242"
    assert item.author == "EU Remote Jobs"
    assert item.published == "Thu, 04 Sep 2026 09:15:02 +0000"
    assert item.summary == "We are hiring &amp; growing. Über&nbsp;cool [&#8230;]"
    assert item.content_html == "<p>Full <b>body</b> &amp; more</p>"
    assert item.locations == ("Berlin, Germany",)  # one free-text location, not split
    assert item.job_types == ("Full Time", "Contract")
    assert item.categories == ("Admin &amp; Operations", "Data", "Engineering")
    assert item.company == "Acme &amp; Söhne"
    assert (item.salary_min, item.salary_max, item.salary_currency, item.salary_period) == (
        "50000",
        "70000",
        "EUR",
        "year",
    )
    assert item.logo_url == "https://euremotejobs.com/logo.png"
    assert item.extra == {"salary_text": "€50k – €70k per year", "post-id": "4242", "slash:comments": "0"}


def test_job_field_names_in_a_standard_namespace_are_not_job_fields() -> None:
    item = only(
        rss(
            "<item><title>t</title><dc:company>not a job field</dc:company><company>Plain Co</company></item>"
        )
    )
    assert item.company == "Plain Co"  # no namespace is not a standard one
    assert item.extra == {"dc:company": "not a job field"}


def test_plain_rss_elements() -> None:
    item = only(
        rss(
            """<item><title>T</title><guid>https://example.org/jobs/1</guid><author>hr@example.org</author>
            <category>A</category><category>B</category><comments>https://example.org/c</comments>
            <enclosure url="https://example.org/logo.jpg" type="image/jpeg" length="1"/></item>""",
            namespaces="",
        )
    )
    assert item.link == "https://example.org/jobs/1"  # a permalink guid stands in for the link
    assert item.author == "hr@example.org"
    assert item.categories == ("A", "B")
    assert item.logo_url == "https://example.org/logo.jpg"
    assert item.extra == {"comments": "https://example.org/c"}


def test_guid_that_is_not_a_permalink_is_not_a_link() -> None:
    item = only(rss('<item><title>T</title><guid isPermaLink="false">https://example.org/?p=1</guid></item>'))
    assert item.link is None


def test_cdata_keeps_html_entities_and_non_ascii() -> None:
    item = only(rss("<item><title><![CDATA[Data &amp; AI – Zürich\u00a0(m/w/d)]]></title></item>"))
    assert item.title == "Data &amp; AI – Zürich\u00a0(m/w/d)"


def test_latin1_document() -> None:
    body = rss("<item><title>Café</title></item>", prolog='<?xml version="1.0" encoding="ISO-8859-1"?>')
    body = body.decode().encode("latin-1")
    assert only(body).title == "Café"


def test_rss091_doctype_is_fine_and_undeclared_entities_stay_text() -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
        b'"http://my.netscape.com/publish/formats/rss-0.91.dtd"><rss version="0.91"><channel>'
        b"<item><title>Caf&eacute;&nbsp;Manager</title><link>https://example.org/1</link></item></channel></rss>"
    )
    assert only(body).title == "Caf&eacute;&nbsp;Manager"  # normalize decodes HTML entities once


def test_empty_channel_has_no_items_and_no_error() -> None:
    assert parse(rss("")) == []
    assert parse(wpjm.HIGHER_ED_EMPTY) == []


def test_duplicate_guids_are_both_yielded() -> None:
    twice = "<item><title>a</title><guid>g1</guid></item>" * 2
    assert [(i.position, i.guid) for i in parse(rss(twice))] == [(1, "g1"), (2, "g1")]


def test_unescaped_html_in_description_is_kept_as_markup() -> None:
    item = only(
        rss("<item><title>t</title><description>Intro <p>para &amp; <b>bold</b></p> end</description></item>")
    )
    assert item.summary == "Intro <p>para &amp; <b>bold</b></p> end"


# ---------------------------------------------------------------- RSS 1.0 and Atom

RDF = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
         xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://example.org/"><title>Jobs</title><link>https://example.org/</link></channel>
  <item rdf:about="https://example.org/jobs/1">
    <title>RDF job</title><link>https://example.org/jobs/1</link><description>Body</description>
    <dc:date>2024-12-07T04:10:26Z</dc:date><dc:creator>Ann</dc:creator><dc:subject>Ops</dc:subject>
  </item>
  <item rdf:about="https://example.org/jobs/2"><title>Second</title></item>
</rdf:RDF>"""


def test_rss_1_0_items() -> None:
    first, second = parse(RDF)
    assert first == RawItem(
        position=1, guid="https://example.org/jobs/1", link="https://example.org/jobs/1", title="RDF job",
        summary="Body", published="2024-12-07T04:10:26Z", author="Ann", categories=("Ops",),
    )  # fmt: skip
    assert (second.position, second.guid, second.title) == (2, "https://example.org/jobs/2", "Second")


ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/">
  <title>Jobs</title><id>urn:feed</id><updated>2024-12-08T00:00:00Z</updated>
  <entry>
    <id>urn:uuid:1</id><title type="html">R&amp;amp;D Lead</title>
    <link rel="self" href="https://example.org/self/1"/><link href="/jobs/1"/>
    <link rel="enclosure" type="image/png" href="https://example.org/1.png"/>
    <published>2024-12-07T04:10:26+01:00</published><updated>2024-12-08T10:00:00Z</updated>
    <author><name>Jane</name><email>j@example.org</email></author>
    <category term="engineering" label="Engineering"/><category term="remote"/>
    <summary type="text">5 &lt; 6 &amp; more</summary>
    <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Hello <b>there</b></p></div></content>
  </entry>
  <entry><id>urn:uuid:2</id><title>Plain</title><content type="text">a &lt;b&gt; c</content>
    <link rel="alternate" href="https://example.org/2"/><media:thumbnail url="https://example.org/t.jpg"/>
  </entry>
  <entry><id>urn:uuid:3</id><title>HTML</title><content type="html">&lt;p&gt;x&lt;/p&gt;</content></entry>
</feed>"""


def test_atom_entries() -> None:
    first, second, third = parse(ATOM)
    assert first.guid == "urn:uuid:1"
    assert first.title == "R&amp;D Lead"
    assert first.link == "/jobs/1"  # normalize resolves it against the feed URL
    assert first.logo_url == "https://example.org/1.png"
    assert (first.published, first.updated, first.author) == (
        "2024-12-07T04:10:26+01:00",
        "2024-12-08T10:00:00Z",
        "Jane",
    )
    assert first.categories == ("engineering", "remote")
    assert first.summary == "5 &lt; 6 &amp; more"  # text constructs are escaped into HTML
    assert first.content_html == "<p>Hello <b>there</b></p>"
    assert (second.content_html, second.link, second.logo_url) == (
        "a &lt;b&gt; c",
        "https://example.org/2",
        "https://example.org/t.jpg",
    )
    assert third.content_html == "<p>x</p>"


# ---------------------------------------------------------------- jobicy JSON


def test_jobicy_json_annual_salary_style() -> None:
    items = parse((FEEDS / "jobicy-api" / JOBICY_FILES[0].name).read_bytes())
    scorpion = next(i for i in items if i.company == "Scorpion")
    assert scorpion.guid == "https://jobicy.com/?post_type=job_listing&p=111786"
    assert (scorpion.salary_min, scorpion.salary_max, scorpion.salary_currency, scorpion.salary_period) == (
        "67500", "79000", "USD", "year",
    )  # fmt: skip
    assert scorpion.published == "2024-11-23 04:41:22"
    assert scorpion.extra == {"job_level": "Any", "job_slug": "111786-account-manager-3"}


def test_jobicy_json_salary_min_max_style_and_list_fields() -> None:
    body = json.dumps(
        {"jobs": [{"id": 7, "url": "https://jobicy.com/jobs/7-x", "jobTitle": "Web &amp; Brand", "companyName": "Co",
                   "jobIndustry": ["Marketing &amp; Sales", "Sales"], "jobType": ["Full-Time"],
                   "jobGeo": "LATAM,  Canada,  USA", "salaryMin": 151000, "salaryMax": 204400.5,
                   "salaryCurrency": "USD", "salaryPeriod": "yearly", "pubDate": "2026-07-10T19:25:02+00:00",
                   "newField": "kept", "nested": {"dropped": True}}]}
    ).encode()  # fmt: skip
    item = only(body)
    assert item.title == "Web &amp; Brand"
    assert item.locations == ("LATAM", "Canada", "USA")
    assert item.categories == ("Marketing &amp; Sales", "Sales")
    assert item.job_types == ("Full-Time",)
    assert (item.salary_min, item.salary_max, item.salary_period) == ("151000", "204400.5", "yearly")
    assert item.extra == {"newField": "kept"}


def test_jobicy_json_odd_jobs_fail_alone() -> None:
    body = b'{"jobs": [42, {"jobTitle": "ok", "id": null, "url": "javascript:x"}]}'
    first, second = parse(body, FeedFormat.JOBICY_JSON)
    assert first == RawItem(position=1)  # normalize reports "no title" for it
    assert (second.title, second.guid, second.link) == ("ok", None, "javascript:x")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"jobs": [', "malformed JSON at line 1"),
        (b'{"jobs": {}}', "not a jobicy-json answer: JSON, but no list of jobs found"),
        (b"\xff\xfe{", "unreadable"),
    ],
)
def test_jobicy_json_errors(body: bytes, message: str) -> None:
    with pytest.raises(FeedParseError, match=message):
        parse(body, FeedFormat.JOBICY_JSON)


# ---------------------------------------------------------------- safety

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><item><title>&xxe;</title></item></channel></rss>"""


def billion_laughs() -> bytes:
    entities = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">\n' for i in range(1, 10))
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol0 "lol">\n{entities}]>\n'
        "<rss><channel><item><title>&lol9;</title></item></channel></rss>"
    ).encode()


def hostile_feed(doctype: bytes, entity: str, items: int) -> Iterator[bytes]:
    """A DTD that declares entities, then ``items`` items that all use ``entity`` (one per chunk)."""
    yield b'<?xml version="1.0"?>\n' + doctype + b'\n<rss version="2.0"><channel><title>t</title>'
    for n in range(items):
        yield f"<item><title>&{entity}; {n}</title><guid>g-{n}</guid></item>\n".encode()
    yield b"</channel></rss>"


HOSTILE_DOCTYPES = {
    "xxe": (XXE.split(b"\n")[1], "xxe"),
    "billion-laughs": (billion_laughs().split(b"<rss>")[0].split(b"\n", 1)[1], "lol9"),
}


@pytest.mark.parametrize("fmt", [FeedFormat.AUTO, FeedFormat.RSS])
@pytest.mark.parametrize("attack", HOSTILE_DOCTYPES)
def test_entity_declarations_are_refused_before_the_body_is_read(attack: str, fmt: FeedFormat) -> None:
    # ~15 MB of items that use the entity follow the DTD: refused within the head (at the prolog, or
    # at lxml's first event), so no item is read, nothing expanded or fetched, whatever follows.
    doctype, entity = HOSTILE_DOCTYPES[attack]
    stream = CountingStream(hostile_feed(doctype, entity, 300_000))
    items: list[RawItem] = []
    with pytest.raises(FeedParseError, match="^parse: DTD entity declarations are not allowed"):
        items.extend(parse_feed(stream, format=fmt))  # type: ignore[arg-type]
    assert items == []
    assert stream.taken <= HEAD_SIZE, stream.taken  # what format detection peeks at, nothing more


def test_lxml_layer_refuses_entities_even_without_the_prolog_check() -> None:
    # The byte check in detect is the first line; the parsed DTD is checked again.
    with pytest.raises(FeedParseError, match="DTD entity declarations are not allowed"):
        list(rss_module.parse(io.BytesIO(XXE)))


def test_a_document_whose_root_is_the_item_is_checked_for_entities_too() -> None:
    # The check runs at the root's start, before the item test: a root that is itself the item
    # (one <job> document) must not slip past it.
    doc = b'<?xml version="1.0"?>\n<!DOCTYPE job [<!ENTITY x "y">]>\n<job><title>&x;</title></job>'
    builds: list[str] = []
    items = xml_module.iter_items(
        io.BytesIO(doc),
        lambda element: xml_module.local_name(element) == "job",
        lambda element, position: builds.append(element.tag) or RawItem(position=position, title="t"),  # type: ignore[func-returns-value]
    )
    with pytest.raises(FeedParseError, match="DTD entity declarations are not allowed"):
        list(items)
    assert builds == []


def test_an_item_inside_an_item_is_part_of_the_outer_one() -> None:
    body = rss(
        "<item><title>Outer</title><item><title>Inner</title><guid>in</guid></item><guid>out</guid></item>"
        "<item><title>Next</title><guid>next</guid></item>"
    )
    items = list(parse_feed(io.BytesIO(body)))
    assert [(i.title, i.guid, i.position) for i in items] == [("Outer", "out", 1), ("Next", "next", 2)]


def test_text_of_reads_a_leaf_and_an_element_with_children_alike() -> None:
    body = rss(
        "<item><title>Plain &amp; simple</title><author>A <b>bold</b> name</author><guid>g</guid></item>"
    )
    parsed = only(body)
    assert (parsed.title, parsed.author) == ("Plain & simple", "A bold name")


def test_entity_text_inside_content_is_not_a_declaration() -> None:
    item = only(
        rss(
            "<item><title>XML security</title><description><![CDATA[Know <!ENTITY attacks]]></description></item>"
        )
    )
    assert item.summary == "Know <!ENTITY attacks"


# ---------------------------------------------------------------- broken documents


def test_malformed_at_the_end_yields_the_items_before_the_break() -> None:
    good = "".join(f"<item><title>job {n}</title><guid>g{n}</guid></item>" for n in range(1, 6))
    body = rss(good + "<item><title>broken</titel></item>")
    seen: list[RawItem] = []
    with pytest.raises(FeedParseError, match=r"^parse: malformed XML at line 1, column \d+: .*mismatch"):
        seen.extend(parse_feed(io.BytesIO(body)))
    assert [i.guid for i in seen] == ["g1", "g2", "g3", "g4", "g5"]


def test_truncated_document() -> None:
    body = rss("<item><title>a</title></item><item><title>b</title></item>")[: -len("</channel></rss>")]
    seen: list[RawItem] = []
    with pytest.raises(FeedParseError, match="malformed XML"):
        seen.extend(parse_feed(io.BytesIO(body)))
    assert [i.title for i in seen] == ["a", "b"]


def test_wrong_explicit_format() -> None:
    with pytest.raises(FeedParseError, match="malformed JSON"):
        parse(rss(""), FeedFormat.JOBICY_JSON)
    with pytest.raises(FeedParseError, match="malformed XML"):
        parse(b'{"jobs": []}', FeedFormat.RSS)


def mutations(seed_doc: bytes, rng: random.Random) -> bytes:
    doc = bytearray(seed_doc)
    tokens = [
        b"<",
        b">",
        b"&",
        b"]]>",
        b"<![CDATA[",
        b"<!DOCTYPE x [<!ENTITY a 'b'>]>",
        b"\x00",
        b"\xff",
        b'"',
        b"{",
        b"}",
    ]
    for _ in range(rng.randint(1, 6)):
        op, at = rng.choice((0, 0, 1, 1, 2, 2, 3, 3, 4)), rng.randrange(len(doc) + 1)
        if op == 0 and doc:
            doc[min(at, len(doc) - 1)] = rng.randrange(256)
        elif op == 1:
            doc[at:at] = rng.choice(tokens)
        elif op == 2:
            del doc[at : at + rng.randint(1, 64)]
        elif op == 3:
            doc[at:at] = doc[rng.randrange(len(doc) + 1) :][: rng.randint(1, 200)]
        else:
            del doc[at:]
    return bytes(doc)


def test_fuzz_mutations_only_ever_raise_feed_errors() -> None:
    rng = random.Random(20261122)
    seeds = [
        wpjm.render_feed(wpjm.load_real_jobs()[:2], title="Jobicy", link="https://jobicy.com"),
        (FEEDS / "jobicy-api" / "jobicy-api-2026-07-10-trimmed-ikevinxie.json").read_bytes(),
        (FEEDS / "higheredjobs-category-trimmed.xml").read_bytes(),
        ATOM,
        RDF,
    ]
    outcomes = {"items": 0, "errors": 0}
    for case in range(1000):
        body = mutations(seeds[case % len(seeds)], rng)
        try:
            outcomes["items"] += sum(1 for _ in parse_feed(io.BytesIO(body)))
        except FeedError:
            outcomes["errors"] += 1
    assert outcomes["items"] > 0 and outcomes["errors"] > 0  # the mutations exercise both paths


# ---------------------------------------------------------------- real and rendered fixtures


@pytest.mark.parametrize("path", JOBICY_FILES, ids=[p.stem for p in JOBICY_FILES])
def test_real_jobicy_captures(path: Path) -> None:
    document = json.loads(path.read_bytes())
    items = parse(path.read_bytes())
    assert [i.position for i in items] == list(range(1, len(document["jobs"]) + 1))
    for item, job in zip(items, document["jobs"], strict=True):
        assert (item.title, item.link, item.company) == (job["jobTitle"], job["url"], job["companyName"])
        assert item.guid == f"https://jobicy.com/?post_type=job_listing&p={job['id']}"


def test_real_higheredjobs_category_feed() -> None:
    items = parse((FEEDS / "higheredjobs-category-trimmed.xml").read_bytes())
    assert [i.title for i in items] == [
        "Manager of Faculty Relations",
        "Assistant Director of Academic Affairs",
        "Groundskeeper",
    ]
    assert (
        items[1].guid is None
        and items[1].link == "https://www.higheredjobs.com/details.cfm?JobCode=179485814"
    )
    assert items[0].published == "Wed, 10 Jun 2026 17:04:44 EDT"


def test_rendered_wpjm_feed_round_trips_the_real_jobs() -> None:
    jobs = wpjm.load_real_jobs()
    items = parse(wpjm.render_feed(jobs, title="Jobicy", link="https://jobicy.com"))
    assert len(items) == len(jobs) == 80
    for item, job in zip(items, jobs, strict=True):
        assert item.guid == f"https://jobicy.com/?post_type=job_listing&p={job['id']}"
        assert item.link == job["url"]
        assert item.content_html == (job["jobDescription"] or None)
        assert item.categories == tuple(job["jobIndustry"])
        assert item.author == "Jobicy"
        assert item.published is not None and item.published.endswith(" +0000")


def test_nine_feeds_parse_and_overlap() -> None:
    feeds = wpjm.nine_feeds()
    assert len(feeds) == 9
    guids = {path: [i.guid for i in parse(body)] for path, body in feeds.items()}
    assert guids["/rss/articleFeed.cfm"] == []
    main = set(guids["/?feed=job_feed"])
    assert len(main) == 50
    for path, found in guids.items():
        assert len(found) == len(set(found)) == feeds[path].count(b"<item>")
        if path.startswith("/?feed=job_feed&"):
            assert main & set(found) and set(found) - main, path  # partly shared, partly their own
    newest = {f"https://jobicy.com/?post_type=job_listing&p={j['id']}" for j in wpjm.load_real_jobs()[:3]}
    assert all(not newest & set(found) for path, found in guids.items() if path != "/?feed=job_feed")


# ---------------------------------------------------------------- streaming and memory


class CountingStream(io.RawIOBase):
    """A readable stream that records how many bytes were taken from it."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""
        self.taken = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            self._pending = next(self._chunks, b"")
            if not self._pending:
                return 0
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        self.taken += count
        return count


def big_feed_chunks(count: int) -> Iterator[bytes]:
    yield rss("").split(b"</channel>")[0]
    for n in range(count):
        yield (
            f"<item><title>Job {n} &amp; more</title><link>https://example.org/jobs/{n}</link>"
            f"<guid>g-{n}</guid><pubDate>Sun, 08 Dec 2024 00:38:13 +0000</pubDate>"
            f"<description><![CDATA[<p>Body of job {n}</p>]]></description></item>\n"
        ).encode()
    yield b"</channel></rss>"


def test_items_are_yielded_while_the_stream_is_still_being_read() -> None:
    stream = CountingStream(big_feed_chunks(20_000))
    items = parse_feed(stream)  # type: ignore[arg-type]
    first = next(items)
    assert first.guid == "g-0"
    assert stream.taken < 300_000  # a head and a few chunks, not the ~4 MB document
    assert sum(1 for _ in items) == 19_999


# Run in a fresh interpreter: how much its peak RSS grows while it parses one file, after a small
# parse has loaded everything any parse needs. The peak is VmHWM, which belongs to the interpreter's
# own address space: ru_maxrss would also count the parent's peak before the exec (Linux keeps it),
# and this process's own is a lifetime figure set by whatever ran before. lxml's tree lives in C
# memory, which tracemalloc does not see; RSS does.
_RSS_GROWTH_OF_A_PARSE = """
import json, re, sys
from pathlib import Path
from jobimporter.parse import parse_feed

def peak_rss():
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"^VmHWM:\\s+(\\d+) kB$", status, re.M).group(1)) * 1024

big, small = sys.argv[1:]
with open(small, "rb") as stream:
    sum(1 for _ in parse_feed(stream))
before = peak_rss()
with open(big, "rb") as stream:
    count = sum(1 for _ in parse_feed(stream))
print(json.dumps({"count": count, "growth": peak_rss() - before}))
"""


def rss_growth_of_a_parse(big: Path, small: Path) -> tuple[int, int]:
    """Items parsed from ``big`` and the peak RSS growth it took, measured in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", _RSS_GROWTH_OF_A_PARSE, str(big), str(small)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    measured = json.loads(done.stdout)
    return int(measured["count"]), int(measured["growth"])


def test_big_feed_parses_with_bounded_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, small = tmp_path / "big.xml", tmp_path / "small.xml"
    with path.open("wb") as out:
        out.writelines(big_feed_chunks(50_000))
    with small.open("wb") as out:
        out.writelines(big_feed_chunks(2_000))
    size = path.stat().st_size
    assert size > 8_000_000
    tree_sizes: list[int] = []
    release = xml_module._release

    calls = itertools.count()

    def spy(element: Any) -> None:
        release(element)
        if next(calls) % 97 == 0:
            tree_sizes.append(sum(1 for _ in element.getroottree().iter()))

    monkeypatch.setattr(xml_module, "_release", spy)
    tracemalloc.start()
    with path.open("rb") as stream:
        count = sum(1 for _ in parse_feed(stream))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 50_000
    assert peak < size / 4, (peak, size)
    # lxml's tree must hold no more than the current item plus what one 32 KiB read parsed ahead
    # (~150 items of 6 nodes here), never more.
    assert 0 < max(tree_sizes) < 2_500, max(tree_sizes)
    # The same parse without the spy, in a fresh process: streaming grows the peak RSS by well under
    # a MB; a parser that kept the document (or only its emptied items) grows it by more than its size.
    parsed, rss_growth = rss_growth_of_a_parse(path, small)
    assert parsed == 50_000
    assert rss_growth < size / 4, (rss_growth, size)
