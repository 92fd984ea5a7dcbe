"""The normalize stage: one :class:`RawItem` → one :class:`JobRecord`, or an :class:`ItemError`.

This module owns everything that turns parser text into stored values:

- text fields (title, company, locations, job types, categories, author) have HTML entities
  decoded exactly once (:func:`html.unescape`) and whitespace collapsed;
- links and logos are made absolute against ``base_url``; a URL that is not http(s) afterwards
  is dropped (kept in ``extra["dropped_urls"]``), never fatal;
- identity (miniflux's adapter habit): ``external_id`` is the guid, else the link, else
  ``sha256:<hex of title + content>``; ``key`` = first 32 hex of sha256(source + "\\n" + external_id);
- job types get one spelling (``"Full Time"`` → ``"full-time"``); lists are de-duplicated in order;
- employment types on one vocabulary (full-time, part-time, contract, temporary, internship,
  volunteer, per diem, other) from the job types, in several languages; the source's own labels
  stay in ``extra["employment_type_source"]``; the workplace (remote / hybrid / onsite) from what
  the source says, else remote when a location reads "Remote";
- ``description_html`` is sanitized with nh3 (no scripts, no event handlers), ``description_text``
  is its plain text;
- ``published_at``/``expires_at`` are UTC from RFC 822, ISO 8601, a naive ``YYYY-MM-DD HH:MM:SS``
  (read as UTC) or a few common forms; an unreadable date keeps its raw text in
  ``extra["published_raw"]``/``extra["expires_raw"]``;
- ``content_hash`` covers every other field, so an unchanged item hashes the same every time;
- ``raw_hash`` digests exactly what the feed said (plus ``NORMALIZER_VERSION``): :func:`identify`
  computes it and the identity without the costly cleaning, so an item whose stored ``raw_hash``
  matches is known unchanged before it is normalized at all.
"""

from __future__ import annotations

import email.utils
import functools
import hashlib
import html
import json
import math
import operator
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import nh3
import orjson
from pydantic import ValidationError

from jobimporter.errors import ItemError
from jobimporter.models import JobRecord, RawItem

MAX_TITLE = 1000
MAX_EXTERNAL_ID = 2048
# Bump whenever normalize's output for the same input changes: stored raw hashes then stop
# matching, and every item is normalized (and its record rewritten if it differs) once more.
NORMALIZER_VERSION = "3"  # 3: apply URL, workplace, employment types, expiry; 2: raw_hash frames by length

_JOB_TYPE_ALIASES = {
    "fulltime": "full-time",
    "full": "full-time",
    "parttime": "part-time",
    "part": "part-time",
    "contractor": "contract",
    "freelancer": "freelance",
    "temp": "temporary",
    "intern": "internship",
    "volunteering": "volunteer",
}
_PERIOD_ALIASES = {
    "yearly": "year",
    "annual": "year",
    "annually": "year",
    "per year": "year",
    "monthly": "month",
    "weekly": "week",
    "daily": "day",
    "hourly": "hour",
}
_CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR"}
_SPACED = re.compile(r"[_\-/]+|(?<=[a-z])(?=[A-Z])")
# Checked in this order on a lower-cased label with _ - / as spaces; every match counts.
_EMPLOYMENT_WORDS = tuple(
    (re.compile(pattern), value)
    for pattern, value in (
        (r"\bper ?diem\b|\bprn\b", "per diem"),
        ((r"\bintern(ship)?s?\b|\bpraktikum|\bstage\b|\btrainee(ship)?\b|\bapprentice|\bausbildung|\bdual stud"
         r"|\bstagiaire|\bpr[aá]cticas|\bstaż"), "internship"),
        (r"\bvolunteer|\bbénévol|\behrenamt", "volunteer"),
        (r"\btemp(orary)?\b|\bseasonal\b|\bbefristet|\bcdd\b|\bint[ée]rim\b|\btemporal\b|\baushilfe", "temporary"),
        (r"\bcontract(or|s)?\b|\bfreelance|\bfreiberuf|\bc2h\b|\bself employed\b|\bwerkvertrag", "contract"),
        ((r"\bpart ?time\b|\bteilzeit|\btemps partiel|\btiempo parcial|\bmedio tiempo|\bmeio per[ií]odo"
         r"|\bminijob|\bside\b|\bworking student|\bwerkstudent|\bhilfstätigkeit|\bnebenjob"), "part-time"),
        ((r"\bfull ?time\b|\bfull or part|\bvollzeit|\btemps plein|\btiempo completo|\btempo (integral|inteiro)|\bplný úvazek"
         r"|\bpełny etat|\bpełen etat"), "full-time"),
        (r"^others?$", "other"),
    )
)  # fmt: skip
_WORKPLACE_WORDS: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"not remote", "no remote", "non remote"}), "onsite"),
    (frozenset({"hybrid", "partially remote", "partly remote", "flexible"}), "hybrid"),
    (frozenset({"remote", "telecommute", "work from home", "wfh", "anywhere", "home office", "fully remote",
                "true", "yes", "y", "1"}), "remote"),
    (frozenset({"onsite", "on site", "in office", "office", "in person", "false", "no", "n", "0"}), "onsite"),
)  # fmt: skip
_REMOTE_PLACE = re.compile(r"^\s*(remote|anywhere|worldwide|work from home)\b", re.IGNORECASE)
_BLOCK_TAGS = frozenset(
    {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td", "th",
     "table", "section", "article", "blockquote", "pre", "hr", "dd", "dt"}
)  # fmt: skip
# Tags as nh3 writes them: names in lower case, attribute values in double quotes (which may hold a
# ">"). The patterns are unrolled (no alternation per character), which re runs ~20 % faster.
_BLOCK_NAMES = "|".join(sorted(_BLOCK_TAGS, key=lambda name: (-len(name), name)))
_BLOCK_TAG = re.compile(rf"</?(?:{_BLOCK_NAMES})\b[^>\"]*(?:\"[^\"]*\"[^>\"]*)*>")
_ANY_TAG = re.compile(r"<[^>\"]*(?:\"[^\"]*\"[^>\"]*)*>")
_NOT_A_NUMBER = re.compile(r"[^\d.\-]")
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# What the sanitizer changes in a text without tags: it escapes & < > and NBSP, turns CR into LF,
# drops NUL and a leading byte order mark. A text with none of them comes back from it as it went in.
_NOT_PLAIN = re.compile("[<>&\r\x00\xa0\ufeff]")


@dataclass(frozen=True, slots=True)
class Identity:
    """Who an item is, and a digest of its raw text: all :func:`identify` needs to decide whether
    the item must be normalized at all."""

    external_id: str
    key: str
    raw_hash: str


def identify(item: RawItem, *, source: str, base_url: str) -> Identity:
    """The item's identity exactly as :func:`normalize` computes it, at a fraction of the cost.

    It runs on every item of every import (an unchanged re-import does little else), so it cleans
    only what the identity needs: the title is checked, not cleaned, and the link is resolved only
    when there is no guid to identify the item by.

    :raises ItemError: for the same missing title / missing identity as :func:`normalize`.
    """
    try:
        return _identify(item, source, base_url)
    except UnicodeEncodeError:
        return _identify(without_surrogates(item), source, base_url)


def _identify(item: RawItem, source: str, base_url: str) -> Identity:
    if _blank(item.title):
        raise ItemError(f"normalize: item #{item.position}: no title")
    external_id = _guid_id(item.guid)
    if external_id is None:
        title = clean_text(item.title) or ""
        external_id = _fallback_id(item, title[:MAX_TITLE], _url(item.link, base_url, {}))
    return Identity(external_id, record_key(source, external_id), raw_hash(item, base_url))


_RAW_SCALARS = (
    "guid", "link", "title", "summary", "content_html", "published", "updated", "author", "company",
    "salary_min", "salary_max", "salary_currency", "salary_period", "logo_url", "apply_url", "workplace",
    "expires",
)  # fmt: skip
_raw_scalars = operator.attrgetter(*_RAW_SCALARS)


def raw_hash(item: RawItem, base_url: str) -> str:
    """Digest of everything the parser found (position aside) and of how it will be normalized.

    The texts are framed by their lengths (a header of list sizes and text lengths, ``-1`` for a
    missing one, then the texts back to back), so no two different items share an input. Joining and
    hashing the bytes is several times cheaper than a ``repr`` of the fields, and sha256 over more
    than 2 KiB runs without the GIL.
    """
    texts: list[str | None] = [NORMALIZER_VERSION, base_url, *_raw_scalars(item)]
    texts += item.locations
    texts += item.job_types
    texts += item.categories
    extra = sorted(item.extra.items())
    for key, value in extra:
        texts += (key, value)
    shape = (len(item.locations), len(item.job_types), len(item.categories), len(extra))
    lengths = [-1 if text is None else len(text) for text in texts]
    header = ",".join(map(str, (*shape, *lengths)))
    body = "".join(text for text in texts if text)
    # surrogatepass: a JSON feed may carry a lone surrogate, which strict UTF-8 cannot encode.
    framed = f"{header}\n{body}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(framed).hexdigest()[:32]


def normalize(item: RawItem, *, source: str, base_url: str, identity: Identity | None = None) -> JobRecord:
    """Clean, resolve and identify one item. ``identity``: what :func:`identify` already computed for
    this item with the same ``source`` and ``base_url``, reused rather than worked out again.

    :raises ItemError: ``"normalize: item #N: <reason>"`` when the item has no title, or nothing
        to identify it by (no guid, no link, no content).
    """
    try:
        return _normalize(item, source, base_url, identity)
    except UnicodeEncodeError:
        return _normalize(without_surrogates(item), source, base_url, identity)


def _normalize(item: RawItem, source: str, base_url: str, identity: Identity | None) -> JobRecord:
    fields, extra = _fields(item, base_url)
    if identity is None:
        external_id = _external_id(item, fields)
        identity = Identity(external_id, record_key(source, external_id), raw_hash(item, base_url))
    fields["external_id"] = identity.external_id
    fields["source"] = source
    fields["extra"] = extra
    fields["content_hash"] = content_hash(fields)
    fields["key"] = identity.key
    fields["raw_hash"] = identity.raw_hash  # after content_hash: it is not content
    try:
        return JobRecord(**fields)
    except ValidationError as exc:
        raise ItemError(f"normalize: item #{item.position}: {_first_error(exc)}") from exc


def normalize_each(
    items: Sequence[tuple[RawItem, Identity]], *, source: str, base_url: str
) -> list[JobRecord | str]:
    """:func:`normalize` over ``(item, identity)`` pairs: a record for each item, or the reason it
    failed. Plain values only, so it runs the same in a thread or in a process pool."""
    results: list[JobRecord | str] = []
    for item, identity in items:
        try:
            results.append(normalize(item, source=source, base_url=base_url, identity=identity))
        except ItemError as exc:
            results.append(str(exc))
        except ValidationError as exc:
            results.append(
                "invalid: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            )
    return results


def without_surrogates(item: RawItem) -> RawItem:
    """The item with each lone surrogate (a JSON feed's ``"\\ud800"`` alone) as U+FFFD: no UTF-8
    text can hold one, so the sanitizer and the hashes refuse it. Only items that have one get here."""

    def fixed(value: Any) -> Any:
        if isinstance(value, str):
            return _SURROGATE.sub("\ufffd", value)
        if isinstance(value, tuple):
            return tuple(fixed(text) for text in value)
        if isinstance(value, dict):
            return {fixed(key): fixed(text) for key, text in value.items()}
        return value

    return RawItem(*(fixed(getattr(item, name)) for name in RawItem.__dataclass_fields__))


def record_key(source: str, external_id: str) -> str:
    """The primary key of a job: stable for the same source and external id."""
    return hashlib.sha256(f"{source}\n{external_id}".encode()).hexdigest()[:32]


def content_hash(fields: dict[str, Any]) -> str:
    """First 32 hex of sha256 over canonical JSON of every field but ``key``/``content_hash``/``raw_hash``:
    sorted keys, no spaces, UTF-8 (``json.dumps(sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)``, datetimes in ISO 8601)."""
    body = {name: value for name, value in fields.items() if name not in ("key", "content_hash", "raw_hash")}
    return hashlib.sha256(_canonical_json(body)).hexdigest()[:32]


def _canonical_json(body: dict[str, Any]) -> bytes:
    """orjson writes the same bytes as the stdlib's canonical form about ten times faster (the stdlib's
    ``ensure_ascii=False`` is slow on long texts). Not for a float it spells otherwise (it writes
    ``1e16`` and ``1e-5`` where Python writes ``1e+16`` and ``1e-05``), nor a value it refuses (a
    lone surrogate): those take the stdlib, so a record hashes the same whichever writes it."""
    if all(_same_float_text(body.get(name)) for name in ("salary_min", "salary_max")):
        try:
            return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json)
    return canonical.encode()


def _same_float_text(value: object) -> bool:
    """Whether orjson writes ``value`` as ``repr`` does: not a float, or one without an exponent."""
    return not isinstance(value, float) or value == 0 or 1e-4 <= abs(value) < 1e16


def _json(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"normalize: cannot hash a {type(value).__name__}")


# ---------------------------------------------------------------- fields


def _fields(item: RawItem, base_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every JobRecord field except the identity ones, and ``extra``."""
    extra: dict[str, Any] = {key: value for key, value in item.extra.items()}
    title = clean_text(item.title)
    if title is None:
        raise ItemError(f"normalize: item #{item.position}: no title")
    description_html = sanitize_html(item.content_html or item.summary or "", base_url)
    fields: dict[str, Any] = {
        "title": title[:MAX_TITLE],
        "company": clean_text(item.company),
        "locations": unique(clean_text(value) for value in item.locations),
        "job_types": unique(canonical_job_type(value) for value in item.job_types),
        "categories": unique(clean_text(value) for value in item.categories),
        "description_html": description_html,
        "description_text": html_to_text(description_html),
        "url": _url(item.link, base_url, extra),
        "logo_url": _url(item.logo_url, base_url, extra),
        "apply_url": _url(item.apply_url, base_url, extra),
        "published_at": _published(item, extra),
        "expires_at": _date_field(item.expires, "expires_raw", extra),
    }
    fields["workplace"] = canonical_workplace(item.workplace, fields["locations"])
    fields["employment_types"] = _employment_types(item.job_types, extra)
    fields |= _salary(item)
    _keep_unmapped(item, extra)
    return fields, extra


def _keep_unmapped(item: RawItem, extra: dict[str, Any]) -> None:
    """Raw values a JobRecord has no field for stay in ``extra``."""
    author = clean_text(item.author)
    if author is not None:
        extra["author"] = author
    if item.updated and item.published:
        extra["updated_raw"] = item.updated.strip()
    if item.content_html and item.summary and item.summary.strip():
        extra["summary_html"] = sanitize_html(item.summary, None)


def _external_id(item: RawItem, fields: dict[str, Any]) -> str:
    guid_id = _guid_id(item.guid)
    return guid_id if guid_id is not None else _fallback_id(item, fields["title"], fields["url"])


def _guid_id(guid: str | None) -> str | None:
    """The id a guid gives, or ``None`` when the item has no (non-blank) guid."""
    text = (guid or "").strip()
    if not text:
        return None
    return text if len(text) <= MAX_EXTERNAL_ID else "sha256:" + _sha256(text)


def _fallback_id(item: RawItem, title: str, url: str | None) -> str:
    """Without a guid: the resolved link, else a digest of title and content."""
    if url is not None and len(url) <= MAX_EXTERNAL_ID:
        return url
    content = (item.content_html or item.summary or "").strip()
    if not content:
        raise ItemError(f"normalize: item #{item.position}: no guid, no link and no content to identify it")
    return "sha256:" + _sha256(f"{title}\n{content}")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}"


# ---------------------------------------------------------------- text


def clean_text(value: str | None) -> str | None:
    """Decode HTML entities once and collapse whitespace (NBSP included); ``None`` if empty."""
    if value is None:
        return None
    text = " ".join(html.unescape(value).split())
    return text or None


def _blank(value: str | None) -> bool:
    """``clean_text(value) is None``, without building the cleaned text: without an entity to decode,
    a text is blank exactly when it is all whitespace (``str.strip`` and ``str.split`` agree on it)."""
    if value is None:
        return True
    if "&" in value:
        return clean_text(value) is None
    return not value.strip()


def unique(values: Iterable[str | None]) -> list[str]:
    """Drop ``None`` and repeats (case-insensitively), keeping the first spelling and the order."""
    seen: set[str] = set()
    result: list[str] = []
    for value in values:
        if value is None or value.casefold() in seen:
            continue
        seen.add(value.casefold())
        result.append(value)
    return result


def canonical_job_type(value: str | None) -> str | None:
    """``"Full Time"``, ``"full_time"``, ``"FULL-TIME"``, ``"Fulltime"`` → ``"full-time"``."""
    text = clean_text(value)
    if text is None:
        return None
    slug = re.sub(r"[\s_\-/]+", "-", text.lower()).strip("-")
    return _JOB_TYPE_ALIASES.get(slug, slug) or None


def employment_types(label: str | None) -> list[str]:
    """The vocabulary values a source's label names: ``"FULL_TIME"``, ``"Vollzeit"`` → full-time;
    ``"full-or-part-time"`` → part-time and full-time; a label naming none (a seniority such as
    "berufserfahren", or "permanent") → none."""
    text = clean_text(label)
    if text is None:
        return []
    spaced = _SPACED.sub(" ", text.lower())
    return [value for pattern, value in _EMPLOYMENT_WORDS if pattern.search(spaced)]


def _employment_types(labels: Sequence[str], extra: dict[str, Any]) -> list[str]:
    cleaned = unique(clean_text(label) for label in labels)
    if cleaned:
        extra["employment_type_source"] = cleaned
    return unique(value for label in cleaned for value in employment_types(label))


def canonical_workplace(value: str | None, locations: Sequence[str] = ()) -> str | None:
    """remote / hybrid / onsite from what the source says (``"Hybrid remote"``, ``"TELECOMMUTE"``,
    ``"OnSite"``, a boolean's ``"true"``/``"no"``); else remote when a location is "Remote"."""
    text = _SPACED.sub(" ", (clean_text(value) or "").lower()).strip()
    if not text:
        return "remote" if any(_REMOTE_PLACE.match(place) for place in locations) else None
    for words, place in _WORKPLACE_WORDS:
        if text in words or any(word in text for word in words if len(word) > 3):
            return place
    return None


def sanitize_html(markup: str, base_url: str | None) -> str:
    """nh3 (ammonia) with its safe defaults; relative links resolved against ``base_url``. A plain
    text (many JSON APIs' descriptions) skips it: it would come back unchanged."""
    if not markup.strip():
        return ""
    if _NOT_PLAIN.search(markup) is None:
        return markup.strip()
    return _cleaner(base_url).clean(markup).strip()


@functools.lru_cache(maxsize=256)
def _cleaner(base_url: str | None) -> nh3.Cleaner:
    """The sanitizer for ``base_url``, built once: building one per call cost about as much as
    cleaning a short text (nh3.clean does that). A base nh3 cannot parse leaves relative links alone."""
    if base_url and base_url.startswith(("http://", "https://")):
        try:
            return nh3.Cleaner(url_relative=("rewrite_with_base", base_url))
        except ValueError:
            pass
    return nh3.Cleaner()


def html_to_text(markup: str) -> str:
    """Plain text of *sanitized* HTML; block elements become word breaks.

    nh3 has already re-serialized the markup (balanced tags with lower-case names, double-quoted
    attributes, ``<`` in text escaped), so stripping tags with a pattern is exact here and ~8x faster
    than parsing it again. Control characters go once the tags are gone (the text is shorter then).
    """
    text = _ANY_TAG.sub("", _BLOCK_TAG.sub(" ", markup))
    return " ".join(html.unescape(_CONTROL_CHARS.sub("", text)).split())


# ---------------------------------------------------------------- urls, dates, money


def _url(value: str | None, base_url: str, extra: dict[str, Any]) -> str | None:
    raw = (value or "").strip()
    if not raw:
        return None
    try:
        absolute = urljoin(base_url, raw)
        parts = urlsplit(absolute)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        extra.setdefault("dropped_urls", []).append(raw)
        return None
    return absolute


def _published(item: RawItem, extra: dict[str, Any]) -> datetime | None:
    return _date_field(item.published or item.updated, "published_raw", extra)


def _date_field(value: str | None, raw_key: str, extra: dict[str, Any]) -> datetime | None:
    """A date in UTC; an unreadable one keeps its text in ``extra[raw_key]``."""
    raw = (value or "").strip()
    if not raw:
        return None
    parsed = parse_date(raw)
    if parsed is None:
        extra[raw_key] = raw
    return parsed


def parse_date(text: str) -> datetime | None:
    """UTC datetime from ISO 8601, naive ``YYYY-MM-DD HH:MM:SS`` (UTC), RFC 822, or a few common
    forms (:data:`_DATE_FORMATS`: US ``8/17/2010``, ``17.08.2010``, ``2024-01-01 10:00:00 UTC``); else ``None``."""
    value = text.strip()
    parsed = _rfc822_common(value)
    if parsed is not None:
        return parsed
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (ValueError, TypeError, IndexError, OverflowError):
            parsed = _strptime_any(value)
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)  # jobicy's "2024-12-07 04:10:26" and RFC 822 "-0000"
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return None


# RSS's usual date, "Mon, 03 Aug 2026 18:44:55 +0000": read directly, as email.utils reads it (at
# half its cost); any other spelling, or a value out of range, takes the general path.
_RFC822_COMMON = re.compile(
    r"(?:[A-Z][a-z]{2}, )?(\d{1,2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([1-9]\d{3}) "
    r"([01]\d|2[0-3]):([0-5]\d):([0-5]\d) (?:([+-])([01]\d|2[0-3])([0-5]\d)|GMT|UTC|UT|Z)",
    re.ASCII,
)
_MONTHS = {name: number for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1
)}  # fmt: skip


def _rfc822_common(value: str) -> datetime | None:
    match = _RFC822_COMMON.fullmatch(value)
    if match is None:
        return None
    day, month, year, hour, minute, second, sign, offset_h, offset_m = match.groups()
    try:
        local = datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second), tzinfo=UTC)
        if sign is None:
            return local
        offset = timedelta(hours=int(offset_h), minutes=int(offset_m))
        return local - offset if sign == "+" else local + offset
    except (ValueError, OverflowError):  # 31 Feb, or a shift past year 1 or 9999
        return None


_DATE_FORMATS = (
    "%m/%d/%Y", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p", "%d.%m.%Y", "%d.%m.%Y %H:%M",
    "%Y-%m-%d %H:%M:%S %Z", "%Y/%m/%d", "%d %B %Y", "%B %d, %Y", "%d %b %Y", "%b %d, %Y",
)  # fmt: skip


def _strptime_any(value: str) -> datetime | None:
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    return None


def _salary(item: RawItem) -> dict[str, Any]:
    return {
        "salary_min": parse_amount(item.salary_min),
        "salary_max": parse_amount(item.salary_max),
        "salary_currency": _currency(item.salary_currency),
        "salary_period": _period(item.salary_period),
    }


def parse_amount(value: str | None) -> float | None:
    """``"$67,500"`` → 67500.0; negative, NaN, infinite or unreadable → ``None``."""
    if value is None:
        return None
    try:
        amount = float(value.strip())  # JSON numbers arrive as "151000" or "1.5e+05"
    except ValueError:
        try:
            amount = float(_NOT_A_NUMBER.sub("", _decimal_point(value)))
        except ValueError:
            return None
    return amount if math.isfinite(amount) and amount >= 0 else None


def _decimal_point(value: str) -> str:
    """``"50.000,00"`` (a comma after the last dot) is European: swap the separators."""
    if "." in value and value.rfind(",") > value.rfind("."):
        return value.replace(".", "").replace(",", ".")
    return value


def _currency(value: str | None) -> str | None:
    text = clean_text(value)
    if text is None:
        return None
    return _CURRENCY_SYMBOLS.get(text, text.upper() if re.fullmatch(r"[A-Za-z]{3}", text) else text)


def _period(value: str | None) -> str | None:
    text = clean_text(value)
    if text is None:
        return None
    lowered = text.lower()
    return _PERIOD_ALIASES.get(lowered, lowered)
