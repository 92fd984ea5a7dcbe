"""A feed's declarative field mapping: each transform on its own, XML (streamed, namespaces) and JSON
items, the two worked examples of the README on real captures, and the errors a bad mapping gets
at load, naming the feed, the field and the problem."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from fixtures.captures import CAPTURES, clean
from jobimporter.errors import ConfigError
from jobimporter.mapping import FieldMapping
from jobimporter.models import FeedFormat, RawItem
from jobimporter.normalize import normalize
from jobimporter.parse import open_feed, parse_feed
from jobimporter.sources import load_sources

XML = """<?xml version="1.0"?>
<export xmlns:a="urn:acme"><meta><count>2</count></meta>
<offers>
  <offer ref="A-1"><headline>Baker (m/f/d) - Berlin</headline><where>Berlin, Germany</where>
    <posted>17.08.2024</posted><tags>bread, pastry , night</tags><a:employer>Acme</a:employer>
    <pay>De 500€ à 1700€ par mois</pay><color>blue</color></offer>
  <offer ref="A-2"><headline>Driver</headline><where></where><alt_where>Hamburg</alt_where>
    <posted>not a date</posted><a:employer></a:employer></offer>
</offers></export>""".encode()


def mapped(fields: dict[str, Any], body: bytes = XML, items: str = "//offer", **extra: Any) -> list[RawItem]:
    mapping = FieldMapping.model_validate(
        {"items": items, "fields": {"title": "headline", **fields}, **extra}
    )
    opened = open_feed(io.BytesIO(body), mapping=mapping)
    assert opened.format is FeedFormat.MAPPED
    return list(opened.items)


def test_a_plain_path_and_an_attribute() -> None:
    first, second = mapped({"guid": "@ref", "link": "concat('https://acme.example/', @ref)"})
    assert (first.guid, first.title, first.link) == (
        "A-1",
        "Baker (m/f/d) - Berlin",
        "https://acme.example/A-1",
    )
    assert second.guid == "A-2"


def test_regex_capture_keeps_the_group() -> None:
    first, second = mapped({"company": {"path": "headline", "regex": r" - (\w+)$"}})
    assert (first.company, second.company) == ("Berlin", None)  # no match: nothing
    (named, _) = mapped({"extra.gender": {"path": "headline", "regex": r"\((?P<value>[a-z/]+)\) (-)"}})
    assert named.extra["gender"] == "m/f/d"


def test_split_and_take() -> None:
    first, _ = mapped(
        {
            "locations": {"path": "where", "split": ",", "take": -1},
            "categories": {"path": "tags", "split": ","},
        }
    )
    assert (first.locations, first.categories) == (("Germany",), ("bread", "pastry", "night"))


def test_join() -> None:
    first, _ = mapped({"summary": {"path": ["tags", "where"], "split": ",", "join": " / "}})
    assert first.summary == "bread / pastry / night"


def test_date_format() -> None:
    first, second = mapped({"published": {"path": "posted", "date_format": "%d.%m.%Y"}})
    assert (first.published, second.published) == ("2024-08-17T00:00:00", None)


def test_constant_value() -> None:
    first, second = mapped({"company": {"value": "Acme Bakeries"}, "workplace": {"value": "onsite"}})
    assert (first.company, second.company, second.workplace) == ("Acme Bakeries", "Acme Bakeries", "onsite")


def test_fallback_chain_of_paths_and_of_rules() -> None:
    first, second = mapped({"locations": ["where", "alt_where"]})
    assert (first.locations, second.locations) == (("Berlin, Germany",), ("Hamburg",))
    _, driver = mapped({"company": {"path": "a:employer", "fallback": ["alt_employer", {"value": "unknown"}]}},
                       namespaces={"a": "urn:acme"})  # fmt: skip
    assert driver.company == "unknown"


def test_salary_text_and_unmapped_elements_in_extra() -> None:
    first, _ = mapped({"salary": "pay"})
    assert (first.salary_min, first.salary_max, first.salary_currency, first.salary_period) == (
        "500",
        "1700",
        "EUR",
        "month",
    )
    assert first.extra["salary_text"] == "De 500€ à 1700€ par mois"
    assert first.extra["color"] == "blue" and "headline" not in first.extra


def test_an_absolute_items_path_names_the_whole_chain() -> None:
    assert len(mapped({}, items="/export/offers/offer")) == 2
    assert mapped({}, items="/offers/offer") == []  # /offers is not the root


def test_json_items_and_paths() -> None:
    body = json.dumps({"result": {"vacancies": [
        {"id": 7, "name": "Nurse", "org": {"name": "Clinic"}, "tags": ["care", "nights"], "place": {"city": "Lyon"}},
        {"id": 8, "name": "Porter", "org": {}, "tags": [], "place": None, "extra_info": "x"}]}}).encode()  # fmt: skip
    fields = {"title": "name", "guid": "id", "company": "org.name", "categories": "tags[*]",
              "locations": ["place.city", {"value": "France"}]}  # fmt: skip
    mapping = FieldMapping.model_validate({"items": "$.result.vacancies[*]", "fields": fields})
    nurse, porter = parse_feed(io.BytesIO(body), mapping=mapping)
    assert (nurse.guid, nurse.company, nurse.categories, nurse.locations) == (
        "7",
        "Clinic",
        ("care", "nights"),
        ("Lyon",),
    )
    assert (porter.company, porter.locations, porter.extra) == (None, ("France",), {"extra_info": "x"})


# ---------------------------------------------------------------- the README's worked examples


def readme_mapping(name: str) -> dict[str, Any]:
    """The mapping of the README's worked example ``name`` (a TOML block), loaded as a sources file."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    block = re.search(rf"```toml\n(# example: {name}\n.*?)```", readme, re.DOTALL)
    assert block is not None, f"README has no worked example {name!r}"
    path = Path(__file__).parent / "fixtures" / "feeds" / f"_{name}.toml"
    try:
        path.write_text(block.group(1))
        (source,) = load_sources(path)
    finally:
        path.unlink()
    assert source.mapping is not None
    return source.mapping.model_dump()


def test_worked_example_jobvite_xml() -> None:
    mapping = FieldMapping.model_validate(readme_mapping("jobvite"))
    body = (CAPTURES / "jobvite-xml-2010-dylang.xml").read_bytes()
    items = list(parse_feed(io.BytesIO(body), mapping=mapping))
    jobs = [normalize(i, source="opower.com", base_url="https://hire.jobvite.com/") for i in items]
    from lxml import etree

    expected = [
        (clean(j.findtext("title")), j.findtext("detail-url").strip())
        for j in etree.fromstring(body).iter("job")
    ]
    assert [(j.title, j.url) for j in jobs] == expected
    assert jobs[0].company == "Opower" and jobs[0].locations == ["Arlington"]
    assert (
        jobs[0].published_at is not None and jobs[0].published_at.isoformat() == "2010-08-17T00:00:00+00:00"
    )


def test_worked_example_arbeitnow_json() -> None:
    mapping = FieldMapping.model_validate(readme_mapping("arbeitnow"))
    body = (CAPTURES / "arbeitnow-2026-MoaviaMahmood.json").read_bytes()
    jobs = [
        normalize(i, source="arbeitnow.com", base_url="https://www.arbeitnow.com/")
        for i in parse_feed(io.BytesIO(body), mapping=mapping)
    ]
    raw = json.loads(body)["data"]
    assert [(j.title, j.url, j.company) for j in jobs] == [
        (clean(r["title"]), r["url"], clean(r["company_name"])) for r in raw
    ]
    assert [j.workplace for j in jobs] == [("remote" if r["remote"] else None) for r in raw]


# ---------------------------------------------------------------- errors at load


BAD = [
    ('fields = { title = "t", colour = "c" }', "mapping.fields.colour: unknown field"),
    ('fields = { link = "u" }', "mapping.fields: title is required"),
    ('fields = { title = { path = "t", regex = "(a" } }', "mapping.fields.title: regex '(a': missing ), unterminated subpattern"),
    ('fields = { title = { path = "t", regex = "(a)(b)" } }', "several groups; name the one to keep"),
    ('fields = { title = { path = "t", value = "x" } }', "mapping.fields.title: give either a path or a constant value"),
    ('fields = { title = { path = "t", take = 1 } }', "mapping.fields.title: take needs split"),
    ('fields = { title = { path = "t", date_format = "%Q" } }', "mapping.fields.title: date_format '%Q'"),
    ('fields = { title = "t[" }', "mapping.fields.title: path 't[': not a valid XPath"),
    ('items = "//job[1]"\nfields = { title = "t" }', "mapping.items '//job[1]': an XML items path is element names only"),
    ('items = "//x:job"\nfields = { title = "t" }', "the prefix 'x' is not in namespaces"),
    ('items = "$.jobs["\nfields = { title = "t" }', "mapping.items '$.jobs[': not a valid JSONPath"),
    ('items = "$.jobs[*]"\nfields = { title = "a..[" }', "mapping.fields.title: path 'a..[': not a valid JSONPath"),
]  # fmt: skip


@pytest.mark.parametrize(("table", "message"), BAD, ids=[m.split(":")[-1][:30] for _, m in BAD])
def test_a_bad_mapping_is_refused_at_load_naming_the_feed_and_the_field(
    tmp_path: Path, table: str, message: str
) -> None:
    items = "" if "items =" in table else 'items = "//job"\n'
    path = tmp_path / "feeds.toml"
    path.write_text(
        f'[[feeds]]\nname = "Acme jobs"\nurl = "https://acme.example/jobs.xml"\n[feeds.mapping]\n{items}{table}\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_sources(path)
    text = str(caught.value)
    assert text.startswith(f"sources: {path}: feed #1 ('Acme jobs'): "), text
    assert message in text, text


def test_the_mapped_format_needs_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "feeds.toml"
    path.write_text('[[feeds]]\nname = "x"\nurl = "https://x.example/"\nformat = "mapped"\n')
    with pytest.raises(ConfigError, match=r"feed #1 \('x'\): feed: format 'mapped' needs a field mapping"):
        load_sources(path)
