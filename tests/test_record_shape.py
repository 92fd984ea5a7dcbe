"""One record shape for every source: salary from text, employment types on one vocabulary, the
workplace, expiry and apply URL (each case from a real source's wording)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jobimporter.models import RawItem
from jobimporter.normalize import (
    NORMALIZER_VERSION,
    canonical_workplace,
    employment_types,
    normalize,
    raw_hash,
)
from jobimporter.parse.salary import salary_from_text

SALARY_CASES = [
    ("Up to $75,000/year", (None, "75000", "USD", "year")),  # Indeed (4 Corner Resources)
    ("De 500€ à 1700€ par mois", ("500", "1700", "EUR", "month")),
    ("$28/hr", ("28", "28", "USD", "hour")),
    ("$18 - $22/hr", ("18", "22", "USD", "hour")),  # Remotive
    ("$31,2k- $52k", ("31200", "52000", "USD", None)),  # Remotive
    ("3000 - 5000", ("3000", "5000", None, None)),  # Jooble: no currency given
    ("€40.000 - €50.000 per annum", ("40000", "50000", "EUR", "year")),
    ("€50k – €70k per year", ("50000", "70000", "EUR", "year")),
    ("1.500,50 € brutto im Monat", ("1500.5", "1500.5", "EUR", "month")),
    ("From £30,000 pa", ("30000", None, "GBP", "year")),
    ("CA$60k-70k", ("60000", "70000", "CAD", None)),
    ("USD 100,000 - 120,000 yearly", ("100000", "120000", "USD", "year")),
    ("Competitive", (None, None, None, None)),
]


@pytest.mark.parametrize(("text", "expected"), SALARY_CASES, ids=[c[0] for c in SALARY_CASES])
def test_salary_from_text(text: str, expected: tuple[str | None, ...]) -> None:
    found = salary_from_text(text)
    keys = ("salary_min", "salary_max", "salary_currency", "salary_period")
    assert tuple(found.get(k) for k in keys) == expected


VOCABULARY = [
    ("FULL_TIME", ["full-time"]), ("Vollzeit", ["full-time"]), ("Regular Full Time (Salary)", ["full-time"]),
    ("FullTime", ["full-time"]), ("Plný úvazek", ["full-time"]), ("Temps plein", ["full-time"]),
    ("PART_TIME", ["part-time"]), ("Teilzeit", ["part-time"]), ("working_student", ["part-time"]),
    ("CONTRACTOR", ["contract"]), ("freelance", ["contract"]), ("Contract to Hire", ["contract"]),
    ("TEMPORARY", ["temporary"]), ("CDD", ["temporary"]), ("INTERN", ["internship"]), ("Praktikum", ["internship"]),
    ("VOLUNTEER", ["volunteer"]), ("PER_DIEM", ["per diem"]), ("OTHER", ["other"]),
    ("full-or-part-time", ["part-time", "full-time"]), ("permanent", []), ("berufserfahren", []), ("Direct Placement", []),
]  # fmt: skip


@pytest.mark.parametrize(("label", "expected"), VOCABULARY, ids=[c[0] for c in VOCABULARY])
def test_employment_types_on_one_vocabulary(label: str, expected: list[str]) -> None:
    assert employment_types(label) == expected


@pytest.mark.parametrize(
    ("said", "expected"),
    [("Fully remote", "remote"), ("Hybrid remote", "hybrid"), ("TELECOMMUTE", "remote"), ("OnSite", "onsite"),
     ("on_site", "onsite"), ("true", "remote"), ("no", "onsite"), ("unspecified", None), ("", None)],
)  # fmt: skip
def test_workplace(said: str, expected: str | None) -> None:
    assert canonical_workplace(said) == expected


def test_a_remote_location_means_remote_when_the_source_says_nothing() -> None:
    assert canonical_workplace(None, ["Remote"]) == "remote"
    assert canonical_workplace(None, ["Berlin"]) is None
    assert canonical_workplace("onsite", ["Remote"]) == "onsite"


def test_the_record_keeps_labels_apply_url_and_expiry_in_utc() -> None:
    item = RawItem(position=1, guid="7", title="Dev", job_types=("Vollzeit", "Festanstellung"),
                   apply_url="/apply/7", expires="2025-05-07T00:00:00+02:00", workplace="Hybrid")  # fmt: skip
    job = normalize(item, source="x.example", base_url="https://x.example/feed")
    assert (job.employment_types, job.extra["employment_type_source"]) == (
        ["full-time"],
        ["Vollzeit", "Festanstellung"],
    )
    assert (job.apply_url, job.workplace) == ("https://x.example/apply/7", "hybrid")
    assert job.expires_at == datetime(2025, 5, 6, 22, tzinfo=UTC)
    unreadable = normalize(
        RawItem(position=1, guid="8", title="x", expires="soon"), source="x", base_url="https://x/"
    )
    assert (unreadable.expires_at, unreadable.extra["expires_raw"]) == (None, "soon")


def test_the_raw_hash_covers_the_new_raw_fields() -> None:
    base = RawItem(position=1, guid="7", title="Dev")
    hashes = {raw_hash(item, "https://x/") for item in (
        base, RawItem(position=1, guid="7", title="Dev", apply_url="a"), RawItem(position=1, guid="7", title="Dev", workplace="a"),
        RawItem(position=1, guid="7", title="Dev", expires="a"))}  # fmt: skip
    assert len(hashes) == 4 and NORMALIZER_VERSION == "3"
