"""Formats beyond RSS on real captures: detection, and every item's fields as the file says them.

For each capture, an independent reading (``fixtures.captures``: ``json``/``lxml`` in the test code)
gives the items' titles, URLs and companies; parsing and normalizing the same bytes must give
exactly those, in order. Then each format's own fields (salary, workplace, employment type, dates,
locations, apply URL, identity) are checked on chosen items against the file. Formats without a
capture (Workable, SmartRecruiters, Recruitee, Remote OK, Working Nomads, We Work Remotely,
WordPress job posts) are checked on small documents written from their documented schemas.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from fixtures.captures import CAPTURE_LIST, Capture, clean
from jobimporter.errors import FeedParseError, NotAFeed
from jobimporter.models import FeedFormat, JobRecord, RawItem
from jobimporter.normalize import normalize
from jobimporter.parse import open_feed, parse_feed

BASE = "https://board.example"


def records(capture: Capture, url: str | None = None) -> tuple[FeedFormat, list[JobRecord]]:
    url = url or BASE + capture.path
    opened = open_feed(io.BytesIO(capture.body), url=url, profile=capture.profile)
    return opened.format, [normalize(item, source="board.example", base_url=url) for item in opened.items]


def by_file(name: str) -> Capture:
    return next(c for c in CAPTURE_LIST if c.file.startswith(name))


@pytest.mark.parametrize("capture", CAPTURE_LIST, ids=[c.file.split("-20")[0] for c in CAPTURE_LIST])
def test_every_item_of_a_capture_reads_as_the_file_says(capture: Capture) -> None:
    url = BASE + capture.path
    expected = capture.expected(url)
    fmt, found = records(capture, url)
    assert fmt.value == capture.format
    assert len(found) == len(expected) > 0
    assert [(r.title, r.url, r.company) for r in found] == [(e.title, e.url, e.company) for e in expected]
    for record in found:
        assert record.published_at is None or record.published_at.tzinfo is UTC


def record_for(name: str, index: int = 0, url: str | None = None) -> JobRecord:
    return records(by_file(name), url)[1][index]


def raw_json(name: str) -> Any:
    return json.loads(by_file(name).body.decode("utf-8-sig"))


# ---------------------------------------------------------------- job XML


def test_indeed_salary_text_dates_in_utc_and_reference_number_identity() -> None:
    job = record_for("indeed-2026")
    assert (job.external_id, job.salary_min, job.salary_max, job.salary_currency, job.salary_period) == (
        "32433869", None, 75000.0, "USD", "year"
    )  # fmt: skip
    assert job.extra["salary_text"] == "Up to $75,000/year"
    assert job.published_at == datetime(2026, 7, 14, 5, 0, tzinfo=UTC)  # 00:00 EST
    assert job.locations == ["Maitland, FL, US"]
    assert job.extra["employment_type_source"] == ["Direct Placement"] and job.employment_types == []
    contract = record_for("indeed-2026", 1)
    assert (contract.salary_max, contract.salary_period, contract.employment_types) == (
        21.0,
        "hour",
        ["contract"],
    )


def test_padded_cdata_without_declaration_crlf_and_entity_encoded_text() -> None:
    job = record_for("indeed-2021")
    assert (job.external_id, job.title, job.company) == (
        "41650",
        "SUPERVISOR DE ALMACEN Y PLANIFICACION",
        "Freshkampo",
    )
    assert job.locations == ["Zamora de Hidalgo, Michoacán, Mexico"]
    assert "publicación" in job.description_text and "&oacute;" not in job.description_text
    assert job.published_at == datetime(2021, 12, 21, 9, 18, 24, tzinfo=UTC)
    assert "indeed-apply-data" in job.extra


def test_talentcom_nested_salary_expiry_and_remote_flag() -> None:
    job = record_for("talentcom")
    assert (job.salary_min, job.salary_max, job.salary_currency, job.salary_period) == (
        1000,
        1100,
        "EUR",
        "month",
    )
    assert job.expires_at == datetime(2025, 5, 7, tzinfo=UTC)
    assert (job.workplace, job.employment_types, job.locations) == ("onsite", ["full-time"], ["Porto, PT"])
    assert job.categories == ["Customer Service"]  # printed as a Python dict by the generator
    assert job.logo_url is not None and job.logo_url.startswith("https://framerusercontent.com/")


def test_jooble_id_attribute_and_careerjet_nested_location_and_apply_url() -> None:
    jooble = record_for("jooble")
    assert (jooble.external_id, jooble.salary_min, jooble.salary_max, jooble.salary_currency) == (
        "CC-0506-49", 3000, 5000, None
    )  # fmt: skip
    careerjet = record_for("careerjet")
    assert careerjet.locations == ["Sofia, BG"]
    assert careerjet.apply_url is not None and "utm_source=CAREERJET" in careerjet.apply_url
    assert careerjet.employment_types == ["full-time"]  # working_hours FULL_TIME; "permanent" names none
    assert careerjet.extra["employment_type_source"] == ["permanent", "FULL_TIME"]


def test_neuvoo_cpc_currency_is_no_salary() -> None:
    job = record_for("neuvoo")
    assert job.salary_currency is None and job.salary_min is None
    assert job.extra["cpc"] and job.extra["currency"] == "EUR"


def test_jobvite_us_dates_and_apply_url() -> None:
    job = record_for("jobvite")
    assert job.published_at == datetime(2010, 8, 17, tzinfo=UTC)
    assert job.apply_url is not None and "Apply.aspx" in job.apply_url
    assert job.external_id == "o1fjVfwe"
    assert "<ul>" in job.description_html  # entity-escaped HTML, decoded once


def test_personio_positions_link_to_their_page_and_keep_salary() -> None:
    job = record_for("personio", url="https://acme.jobs.personio.de/xml")
    assert (job.url, job.company, job.locations) == (
        "https://acme.jobs.personio.de/job/2140231", "Parent Ltd.", ["London"]
    )  # fmt: skip
    assert (job.salary_min, job.salary_max, job.salary_currency, job.salary_period) == (
        100000,
        None,
        "GBP",
        "year",
    )
    assert "<h3>Your mission</h3>" in job.description_html
    remote = next(r for r in records(by_file("personio"))[1] if r.locations == ["Remote"])
    assert remote.workplace == "remote"


# ---------------------------------------------------------------- ATS APIs


def test_greenhouse_content_is_unescaped_html_and_times_are_utc() -> None:
    job = record_for("greenhouse")
    assert job.description_html.startswith("<div") and "&lt;" not in job.description_html
    assert job.published_at == datetime(2026, 7, 16, 15, 55, 32, tzinfo=UTC)
    assert (job.external_id, job.company, job.categories) == (
        "8636903002",
        "Amplitude",
        ["Solutions Consulting"],
    )


def test_lever_workplace_commitment_lists_and_apply_url() -> None:
    postings = raw_json("lever")
    found = records(by_file("lever"))[1]
    for posting, job in zip(postings, found, strict=True):
        assert job.workplace == (
            posting["workplaceType"] if posting["workplaceType"] != "unspecified" else None
        )
        assert job.apply_url == posting["applyUrl"]
        assert job.published_at == datetime.fromtimestamp(posting["createdAt"] / 1000, UTC)
    assert any(lst["text"] in found[0].description_text for lst in postings[0]["lists"])


def test_ashby_compensation_and_remote() -> None:
    jobs = raw_json("ashby")["jobs"]
    found = records(by_file("ashby"))[1]
    index = next(i for i, j in enumerate(jobs) if j["compensation"]["summaryComponents"])
    salary = next(
        c for c in jobs[index]["compensation"]["summaryComponents"] if c["compensationType"] == "Salary"
    )
    job = found[index]
    assert (job.salary_min, job.salary_max, job.salary_currency, job.salary_period) == (
        salary["minValue"], salary["maxValue"], salary["currencyCode"], "year"
    )  # fmt: skip
    assert all(r.workplace == ("remote" if j["isRemote"] else None) for r, j in zip(found, jobs, strict=True))
    assert found[0].employment_types == ["full-time"] and found[0].apply_url == jobs[0]["applyUrl"]


# ---------------------------------------------------------------- job-board APIs


def test_remotive_bom_salary_text_and_remote() -> None:
    job = record_for("remotive")
    assert (job.salary_min, job.salary_max, job.salary_currency, job.salary_period) == (18, 22, "USD", "hour")
    assert (job.workplace, job.employment_types, job.locations) == ("remote", ["contract"], ["USA"])
    assert job.published_at == datetime(2026, 7, 26, 20, 49, 11, tzinfo=UTC)


def test_arbeitnow_epoch_dates_and_levels_that_are_no_employment_type() -> None:
    jobs = raw_json("arbeitnow")["data"]
    found = records(by_file("arbeitnow"))[1]
    for raw, job in zip(jobs, found, strict=True):
        assert job.published_at == datetime.fromtimestamp(raw["created_at"], UTC)
        assert job.workplace == ("remote" if raw["remote"] else None)
    levels = [job for raw, job in zip(jobs, found, strict=True) if raw["job_types"] == ["berufserfahren"]]
    assert levels and all(job.employment_types == [] for job in levels)


def test_himalayas_salary_expiry_and_location_restrictions() -> None:
    jobs = raw_json("himalayas")["jobs"]
    found = records(by_file("himalayas"))[1]
    index = next(i for i, j in enumerate(jobs) if j["minSalary"])
    assert (found[index].salary_min, found[index].salary_max, found[index].salary_period) == (
        jobs[index]["minSalary"], jobs[index]["maxSalary"], "year"
    )  # fmt: skip
    assert found[0].expires_at == datetime.fromtimestamp(jobs[0]["expiryDate"], UTC)
    assert found[0].locations == jobs[0]["locationRestrictions"] and found[0].workplace == "remote"


def test_usajobs_pay_schedule_close_date_and_apply_uri() -> None:
    job = record_for("usajobs")
    assert (job.salary_min, job.salary_max, job.salary_currency, job.salary_period) == (
        77490,
        141555,
        "USD",
        "year",
    )
    assert job.employment_types == ["full-time"]
    assert job.expires_at == datetime(2016, 5, 16, tzinfo=UTC)
    assert job.apply_url is not None and job.apply_url.endswith("PostingChannelID=RESTAPI")
    assert "<c0>" not in job.description_html and job.extra["position_id"] == "OS-6010-16-CLR-128-DEU"


def test_adzuna_currency_from_the_country_in_the_url() -> None:
    job = record_for("adzuna", url="https://api.adzuna.com/v1/api/jobs/gb/search/1?results_per_page=50")
    assert (job.salary_currency, job.salary_period, job.external_id) == ("GBP", "year", "5346670339")
    assert job.extra["salary_is_predicted"] == "1"


# ---------------------------------------------------------------- schema.org JobPosting


def test_jobposting_in_a_page_takes_the_page_url_identifier_salary_and_remote() -> None:
    job = record_for("jsonld-jobposting-wellfound", url="https://wellfound.com/jobs/3180780")
    assert (job.url, job.external_id) == (
        "https://wellfound.com/jobs/3180780",
        "3180780-founding-software-engineer",
    )
    assert (job.salary_min, job.salary_max, job.salary_currency, job.salary_period) == (
        1000,
        2000,
        "USD",
        "year",
    )
    assert (job.workplace, job.employment_types) == ("remote", ["full-time"])
    assert job.expires_at == datetime(2025, 10, 1, 4, 5, 8, tzinfo=UTC)
    assert job.locations[0] == "South Fulton, Tennessee, United States"


def test_jobposting_graph_several_scripts_and_a_single_object() -> None:
    posting = {"@type": "JobPosting", "title": "Dev", "url": "https://x.example/1", "employmentType": ["PART_TIME"],
               "baseSalary": {"@type": "MonetaryAmount", "currency": "EUR",
                              "value": {"@type": "QuantitativeValue", "value": 28, "unitText": "HOUR"}},
               "jobLocationType": "TELECOMMUTE", "applicantLocationRequirements": {"@type": "Country", "name": "DE"}}  # fmt: skip
    graph = {"@context": "https://schema.org", "@graph": [{"@type": "WebPage"}, posting]}
    page = (
        "<!doctype html><html><head><title>Jobs</title>"
        f'<script type="application/ld+json">{json.dumps({"@type": "Organization"})}</script>'
        f'<script type="application/ld+json">{json.dumps(graph)}</script>'
        f'<script type="application/ld+json">{json.dumps(posting | {"url": "https://x.example/2"})}</script>'
        "</head><body/></html>"
    ).encode()
    items = list(parse_feed(io.BytesIO(page), url="https://x.example/jobs"))
    assert [i.link for i in items] == ["https://x.example/1", "https://x.example/2"]
    job = normalize(items[0], source="x.example", base_url="https://x.example/jobs")
    assert (job.salary_min, job.salary_max, job.salary_period, job.workplace) == (28, 28, "hour", "remote")
    assert (job.employment_types, job.locations) == (["part-time"], ["DE"])
    assert [i.title for i in parse_feed(io.BytesIO(json.dumps(posting).encode()))] == ["Dev"]


def test_a_page_without_postings_is_still_an_html_page() -> None:
    page = b"<!doctype html><html><head><title>Just a moment...</title></head><body/></html>"
    with pytest.raises(NotAFeed, match=r"looks like an HTML page \(Just a moment\.\.\.\)"):
        list(parse_feed(io.BytesIO(page)))


# ---------------------------------------------------------------- board RSS with profiles


def test_stackoverflow_profile_company_role_place_and_updated() -> None:
    job = record_for("stackoverflow")
    assert (job.title, job.company, job.locations) == (
        "Full-Stack Engineer",
        "PageFair",
        ["Rathmines, Ireland"],
    )
    assert "author" not in job.extra and job.categories[:2] == ["javascript", "angularjs"]


def test_pythonorg_profile_location_from_the_first_line() -> None:
    job = record_for("pythonorg")
    assert (job.company, job.locations) == ("Lemon.io", ["CLAYMONT, Utah, United States"])


def test_board_profiles_are_chosen_by_host() -> None:
    capture = by_file("stackoverflow")
    opened = open_feed(io.BytesIO(capture.body), url="https://stackoverflow.com/jobs/feed?l=ireland")
    assert opened.profile is not None and opened.profile.name == "stackoverflow"
    assert next(opened.items).company == "PageFair"
    none = open_feed(io.BytesIO(capture.body), url="https://stackoverflow.com/jobs/feed", profile="none")
    assert none.profile is None and next(none.items).company is None


WWR_ITEM = """<item><title>Acme Corp: Senior Rails Developer</title><region>Anywhere in the World</region>
<country>Worldwide</country><type>Full-Time</type><category>Back-End Programming</category>
<description>&lt;p&gt;Build things&lt;/p&gt;</description><pubDate>Tue, 03 Jun 2025 10:00:00 +0000</pubDate>
<expires_at>2025-07-03 10:00:00 UTC</expires_at>
<guid>https://weworkremotely.com/remote-jobs/acme-corp-senior-rails-developer</guid>
<link>https://weworkremotely.com/remote-jobs/acme-corp-senior-rails-developer</link></item>"""


def rss(items: str, namespaces: str = "") -> bytes:
    return f'<?xml version="1.0"?><rss version="2.0" {namespaces}><channel><title>t</title>{items}</channel></rss>'.encode()


def test_weworkremotely_profile_role_company_region_type() -> None:
    url = "https://weworkremotely.com/categories/remote-back-end-programming-jobs.rss"
    item = next(parse_feed(io.BytesIO(rss(WWR_ITEM)), url=url))
    job = normalize(item, source="weworkremotely.com", base_url=url)
    assert (job.title, job.company, job.locations) == (
        "Senior Rails Developer",
        "Acme Corp",
        ["Anywhere in the World"],
    )
    assert (job.employment_types, job.workplace) == (["full-time"], "remote")
    assert job.expires_at == datetime(2025, 7, 3, 10, tzinfo=UTC)
    assert "region" not in job.extra and job.extra["country"] == "Worldwide"


def test_wordpress_job_posts_profile_reads_the_creator() -> None:
    item = (
        "<item><title>Customer Success Lead</title><link>https://jobspresso.co/job/lead/</link>"
        "<dc:creator><![CDATA[Doist<br>⚲&nbsp;Anywhere (100% Remote) Only]]></dc:creator></item>"
    )
    body = rss(item, 'xmlns:dc="http://purl.org/dc/elements/1.1/"')
    for url in (
        "https://jobspresso.co/feed/?post_type=job_listing",
        "https://other-wp-board.example/feed/?post_type=job_listing",
    ):
        raw = next(parse_feed(io.BytesIO(body), url=url))
        assert (raw.company, raw.locations, raw.author) == ("Doist", ("Anywhere (100% Remote) Only",), None)


# ---------------------------------------------------------------- APIs without a capture (documented schemas)


def only(document: object, url: str = "https://api.example/jobs") -> tuple[FeedFormat, JobRecord]:
    opened = open_feed(io.BytesIO(json.dumps(document).encode()), url=url)
    return opened.format, normalize(next(opened.items), source="api.example", base_url=url)


def test_workable_widget_company_from_the_account() -> None:
    fmt, job = only({"name": "Acme", "description": "", "jobs": [{
        "title": "Designer", "shortcode": "A1B2C3D4E5", "code": "", "employment_type": "Part-time",
        "telecommuting": True, "department": "Design", "url": "https://apply.workable.com/j/A1B2C3D4E5",
        "shortlink": "https://apply.workable.com/j/A1B2C3D4E5", "application_url": "https://apply.workable.com/j/A1B2C3D4E5/apply",
        "published_on": "2025-02-01", "created_at": "2025-01-30", "country": "Greece", "city": "Athens", "state": "Attica",
        "locations": [{"country": "Greece", "countryCode": "GR", "city": "Athens", "region": "Attica", "hidden": False}]}]})  # fmt: skip
    assert fmt is FeedFormat.WORKABLE
    assert (job.external_id, job.company, job.locations, job.workplace) == (
        "A1B2C3D4E5",
        "Acme",
        ["Athens, Attica, Greece"],
        "remote",
    )
    assert job.employment_types == ["part-time"] and job.apply_url.endswith("/apply")  # type: ignore[union-attr]


def test_smartrecruiters_postings_page_url_and_hybrid() -> None:
    fmt, job = only({"offset": 0, "limit": 100, "totalFound": 1, "content": [{
        "id": "744000012345678", "name": "Data Engineer", "uuid": "u", "refNumber": "REF123",
        "company": {"identifier": "Acme1", "name": "Acme"}, "releasedDate": "2025-03-04T10:20:30.000Z",
        "location": {"city": "Lisbon", "region": "Lisbon", "country": "pt", "remote": False, "hybrid": True},
        "typeOfEmployment": {"id": "permanent", "label": "Full-time"}, "department": {"id": "1", "label": "IT"}}]})  # fmt: skip
    assert fmt is FeedFormat.SMARTRECRUITERS
    assert (job.url, job.company, job.workplace) == (
        "https://jobs.smartrecruiters.com/Acme1/744000012345678",
        "Acme",
        "hybrid",
    )
    assert (job.locations, job.employment_types, job.categories) == (["Lisbon, pt"], ["full-time"], ["IT"])
    assert job.extra["refNumber"] == "REF123"


def test_recruitee_offers() -> None:
    fmt, job = only({"offers": [{
        "id": 1234, "slug": "backend", "title": "Backend Dev", "careers_url": "https://acme.recruitee.com/o/backend",
        "careers_apply_url": "https://acme.recruitee.com/o/backend/c/new", "company_name": "Acme", "location": "Berlin, Germany",
        "remote": False, "hybrid": True, "employment_type_code": "fulltime_permanent", "department": "Engineering",
        "published_at": "2025-01-02 09:00:00 UTC", "description": "<p>Go</p>", "requirements": "<p>SQL</p>"}]})  # fmt: skip
    assert fmt is FeedFormat.RECRUITEE
    assert (job.external_id, job.company, job.workplace, job.employment_types) == (
        "1234",
        "Acme",
        "hybrid",
        ["full-time"],
    )
    assert job.published_at == datetime(2025, 1, 2, 9, tzinfo=UTC) and "SQL" in job.description_text


def test_remoteok_skips_its_legal_notice() -> None:
    document = [{"last_updated": 1740000000, "legal": "API Terms of Service: ..."},
                {"slug": "x-1", "id": "1093", "epoch": 1740000000, "date": "2025-02-19T21:20:00+00:00",
                 "company": "Acme", "position": "SRE", "tags": ["devops"], "location": "Worldwide",
                 "salary_min": 0, "salary_max": 0, "url": "https://remoteOK.com/remote-jobs/x-1",
                 "apply_url": "https://remoteOK.com/l/1093", "description": "<p>Run it</p>"}]  # fmt: skip
    opened = open_feed(io.BytesIO(json.dumps(document).encode()), url="https://remoteok.com/api")
    items = list(opened.items)
    assert (
        opened.format is FeedFormat.REMOTEOK
        and [i.title for i in items] == ["SRE"]
        and items[0].position == 1
    )
    job = normalize(items[0], source="remoteok.com", base_url="https://remoteok.com/api")
    assert (job.salary_min, job.workplace, job.apply_url) == (None, "remote", "https://remoteOK.com/l/1093")


def test_working_nomads_tags_string() -> None:
    fmt, job = only([{"url": "https://www.workingnomads.com/jobs/qa-acme", "title": "QA", "description": "<p>t</p>",
                      "company_name": "Acme", "category_name": "Development", "tags": "qa,python",
                      "location": "Europe, UK", "pub_date": "2025-02-03T10:00:00-05:00"}])  # fmt: skip
    assert fmt is FeedFormat.WORKING_NOMADS
    assert (job.categories, job.locations) == (["Development", "qa", "python"], ["Europe", "UK"])
    assert job.published_at == datetime(2025, 2, 3, 15, tzinfo=UTC) and job.external_id == job.url


def test_an_empty_jobs_list_is_told_by_the_host() -> None:
    empty = b'{"jobs": []}'
    assert (
        open_feed(io.BytesIO(empty), url="https://boards-api.greenhouse.io/v1/boards/x/jobs").format
        is FeedFormat.GREENHOUSE
    )
    assert (
        open_feed(io.BytesIO(empty), url="https://remotive.com/api/remote-jobs").format is FeedFormat.REMOTIVE
    )
    with pytest.raises(NotAFeed, match=r"JSON, but no list of jobs found \(top-level keys: jobs\)"):
        open_feed(io.BytesIO(empty), url="https://unknown.example/api")


def test_workable_and_remotive_answers_are_not_read_as_jobicy() -> None:
    remotive = by_file("remotive")
    items = list(parse_feed(io.BytesIO(remotive.body), url="https://api.example/x"))
    assert all(
        item.title and not (item.guid or "").startswith("https://remotive.com/?post_type") for item in items
    )


# ---------------------------------------------------------------- what is no known format


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"results": {"count": 0}, "status": "ok"}', r"JSON, but no list of jobs found \(top-level keys: results, status\)"),
        (b'[{"a": 1}]', "a JSON array of 1 elements, not a known job format: give the feed a field mapping"),
        (b"<?xml version='1.0'?><catalog><book/></catalog>", "XML with root <catalog>, not a known job format: give the feed a field mapping"),
    ],
)  # fmt: skip
def test_unknown_documents_say_what_they_are(body: bytes, message: str) -> None:
    with pytest.raises(NotAFeed, match=message):
        list(parse_feed(io.BytesIO(body)))


def test_pascal_case_latin1_job_xml_streams() -> None:
    body = (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\r\n<Jobs><Job><JobID>77</JobID><JobTitle>Técnico</JobTitle>'
        "<CompanyName>Ñandú SA</CompanyName><JobURL>https://x.example/77</JobURL><City>Málaga</City>"
        "<Country>ES</Country><SalaryMin>20000</SalaryMin><SalaryMax>25000</SalaryMax><Currency>EUR</Currency>"
        "<EmploymentType>Vollzeit</EmploymentType><DatePosted>17.08.2024</DatePosted></Job></Jobs>"
    ).encode("latin-1")
    (item,) = list(parse_feed(io.BytesIO(body)))
    job = normalize(item, source="x.example", base_url="https://x.example/feed")
    assert (job.external_id, job.title, job.company, job.locations) == (
        "77",
        "Técnico",
        "Ñandú SA",
        ["Málaga, ES"],
    )
    assert (job.salary_min, job.salary_max, job.salary_currency, job.employment_types) == (
        20000,
        25000,
        "EUR",
        ["full-time"],
    )
    assert job.published_at == datetime(2024, 8, 17, tzinfo=UTC)


def test_an_odd_job_object_fails_alone() -> None:
    body = json.dumps({"offset": 0, "totalFound": 2, "content": [
        {"id": "1", "name": ["not", "text"], "releasedDate": "x", "typeOfEmployment": 7},
        {"id": "2", "name": "Fine", "releasedDate": "2025-01-01", "typeOfEmployment": {"label": "Contract"}}]})  # fmt: skip
    items = list(parse_feed(io.BytesIO(body.encode())))
    assert [i.title for i in items] == [None, "Fine"]


def test_malformed_json_is_a_parse_error() -> None:
    with pytest.raises(FeedParseError, match="malformed JSON at line 1"):
        list(parse_feed(io.BytesIO(b'{"jobs": [')))


def test_raw_items_stay_text_only() -> None:
    item = next(parse_feed(io.BytesIO(by_file("usajobs").body)))
    assert isinstance(item, RawItem) and all(isinstance(v, str) for v in item.extra.values())
    assert clean(" a&amp;b ") == "a&b"
