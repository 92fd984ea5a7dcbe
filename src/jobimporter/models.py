"""Records that flow between the stages: sources → raw items → job records → import history.

All are immutable. ``RawItem`` crosses Redis to the batch jobs as a JSON list (``to_row``), checked
on arrival (``from_row``); ``JobRecord`` is a pydantic model, validated once where the batch job
normalizes it; the others are plain frozen dataclasses or pydantic models for the API.
"""

from __future__ import annotations

import operator
import os
import time
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from jobimporter.crons import valid_cron
from jobimporter.mapping import FieldMapping


def utcnow() -> datetime:
    """Timezone-aware now in UTC; the only clock domain code uses."""
    return datetime.now(UTC)


def duration_text(seconds: float) -> str:
    """``42 s``, ``3 min 5 s``, ``2 h 10 min``: how long something took, for a person."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, sorts like the time it encodes


def new_id(prefix: str) -> str:
    """A short, time-sortable, unique id such as ``run_01jd3k...``."""
    value = (time.time_ns() // 1_000_000) << 40 | int.from_bytes(os.urandom(5), "big")
    chars = []
    for _ in range(18):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return f"{prefix}_{''.join(reversed(chars))}"


# ---------------------------------------------------------------- sources


class FeedFormat(StrEnum):
    """What a feed body is; ``AUTO`` detects it from the content (and the host when that is ambiguous)."""

    AUTO = "auto"
    RSS = "rss"
    ATOM = "atom"
    JOB_XML = "job-xml"  # Indeed-style <source>/<job> and its variants
    PERSONIO_XML = "personio-xml"
    JSONLD = "jsonld"  # schema.org JobPosting, in an HTML page or as JSON
    JOBICY_JSON = "jobicy-json"
    GREENHOUSE = "greenhouse"
    LEVER = "lever"
    ASHBY = "ashby"
    WORKABLE = "workable"
    SMARTRECRUITERS = "smartrecruiters"
    RECRUITEE = "recruitee"
    REMOTIVE = "remotive"
    REMOTEOK = "remoteok"
    ARBEITNOW = "arbeitnow"
    HIMALAYAS = "himalayas"
    WORKING_NOMADS = "workingnomads"
    USAJOBS = "usajobs"
    ADZUNA = "adzuna"
    MAPPED = "mapped"  # the feed's own field mapping (any XML or JSON)


class Priority(StrEnum):
    NORMAL = "normal"
    HIGH = "high"


Cron = Annotated[str, AfterValidator(valid_cron)]
DEFAULT_MAX_PAGES = 50


MAPPED_NEEDS_A_MAPPING = "format 'mapped' needs a field mapping ([feeds.mapping])"


class FeedSource(BaseModel):
    """One feed as configured (sources file or built-in defaults)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    url: str = Field(pattern=r"^https?://")
    format: FeedFormat = FeedFormat.AUTO
    enabled: bool = True
    priority: Priority = Priority.NORMAL
    cron: Cron | None = None  # None: the scheduler's cron (JOBIMPORTER_CRON)
    # Board conventions: "auto" (chosen by host), "none", or a profile's name (parse.profiles checks it).
    profile: str = Field(default="auto", pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)
    mapping: FieldMapping | None = None  # a declarative field mapping instead of a known format
    max_pages: int = Field(default=DEFAULT_MAX_PAGES, ge=1, le=10_000)  # paged APIs: pages read at most

    @model_validator(mode="after")
    def _mapped_has_a_mapping(self) -> Self:
        if self.format is FeedFormat.MAPPED and self.mapping is None:
            raise ValueError(MAPPED_NEEDS_A_MAPPING)
        return self


class Feed(FeedSource):
    """A feed as stored: its id, the HTTP validators from its last complete import, and, when its
    health paused it (``enabled`` false), when and why."""

    id: str
    etag: str | None = None
    last_modified: str | None = None
    paused_at: datetime | None = None
    paused_reason: str | None = None


# ---------------------------------------------------------------- parse → normalize


@dataclass(frozen=True, slots=True)
class RawItem:
    """One item as the parser found it: text only, nothing cleaned or resolved yet.

    ``position`` is the item's 1-based index in the document, used in failure reasons when the
    item has no usable id.
    """

    position: int
    guid: str | None = None
    link: str | None = None
    title: str | None = None
    summary: str | None = None
    content_html: str | None = None
    published: str | None = None
    updated: str | None = None
    author: str | None = None
    company: str | None = None
    locations: tuple[str, ...] = ()
    job_types: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    salary_min: str | None = None
    salary_max: str | None = None
    salary_currency: str | None = None
    salary_period: str | None = None
    logo_url: str | None = None
    apply_url: str | None = None
    workplace: str | None = None  # what the source says: "remote", "Hybrid remote", "true", "TELECOMMUTE"...
    expires: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def to_row(self) -> list[Any]:
        """The item as a JSON-ready list in field order: how it crosses Redis to a batch job (a list,
        not a dict: no field names repeated per item, and the cheapest form to dump and load)."""
        return list(_raw_values(self))

    @classmethod
    def from_row(cls, row: Any) -> RawItem:
        """The item :meth:`to_row` gave, back from JSON.

        :raises TypeError: the row is not one (not a list of that length, or a value of the wrong type).
        """
        if type(row) is not list or len(row) != len(_RAW_FIELDS):
            raise TypeError(f"not a raw item row of {len(_RAW_FIELDS)} values")
        if type(row[0]) is not int or not _TEXT_OR_NONE.issuperset(map(type, _text_values(row))):
            raise TypeError("position must be a number, and every text field a text or null")
        extra = row[-1]
        if type(extra) is not dict or not _TEXTS.issuperset(map(type, (*extra, *extra.values()))):
            raise TypeError("extra must map texts to texts")
        values = row.copy()
        for at in _LIST_AT:
            if type(values[at]) is not list or not _TEXTS.issuperset(map(type, values[at])):
                raise TypeError(f"{_RAW_FIELDS[at]}: not a list of texts")
            values[at] = tuple(values[at])
        return cls(*values)


_RAW_FIELDS = tuple(f.name for f in fields(RawItem))
_LIST_AT = tuple(
    at for at, name in enumerate(_RAW_FIELDS) if name in ("locations", "job_types", "categories")
)
_text_values = operator.itemgetter(*(at for at in range(1, len(_RAW_FIELDS) - 1) if at not in _LIST_AT))
_TEXTS = frozenset({str})
_TEXT_OR_NONE = frozenset({str, type(None)})
_raw_values = operator.attrgetter(*_RAW_FIELDS)


# One vocabulary for every source (schema.org's employmentType values, spelled like our job types).
EmploymentType = Literal[
    "full-time", "part-time", "contract", "temporary", "internship", "volunteer", "per diem", "other"
]
Workplace = Literal["remote", "hybrid", "onsite"]


class JobRecord(BaseModel):
    """A normalized job listing, ready to store.

    Identity: ``source`` (publisher host, e.g. ``jobicy.com``) plus ``external_id`` (the guid, else
    the link, else ``sha256:<hash of title+content>``). ``key`` is a stable digest of both and is the
    primary key everywhere. ``content_hash`` covers every normalized field below it and decides
    updated vs unchanged.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(min_length=8, max_length=64)
    source: str = Field(min_length=1, max_length=255)
    external_id: str = Field(min_length=1, max_length=2048)
    title: str = Field(min_length=1, max_length=1000)
    company: str | None = None
    locations: list[str] = Field(default_factory=list)
    job_types: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    description_html: str = ""
    description_text: str = ""
    url: str | None = None
    published_at: datetime | None = None
    salary_min: float | None = None
    salary_max: float | None = None
    salary_currency: str | None = None
    salary_period: str | None = None
    logo_url: str | None = None
    apply_url: str | None = None
    workplace: Workplace | None = None
    employment_types: list[EmploymentType] = Field(default_factory=list)
    expires_at: datetime | None = None
    extra: dict[str, Any] = Field(default_factory=dict)
    content_hash: str = Field(min_length=8, max_length=64)
    raw_hash: str | None = Field(default=None, max_length=64)  # digest of the feed's raw text, not content


@dataclass(frozen=True, slots=True)
class ItemFailure:
    """Why one item failed. ``external_id`` is the item's id, or ``item #N`` when it has none.
    ``key`` is the job's key when the item was identified before it failed: the feed still lists
    that job, so it does not leave the feed (see ``JobStore.finalize_entry``)."""

    external_id: str
    reason: str
    key: str | None = None

    def to_dict(self) -> dict[str, str]:
        return {"external_id": self.external_id, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class UpsertResult:
    """What one batch did to the store; ``failures`` explains every ``failed``."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    failures: tuple[ItemFailure, ...] = ()

    @property
    def total(self) -> int:
        return self.new + self.updated + self.unchanged + self.failed

    def __add__(self, other: UpsertResult) -> UpsertResult:
        return UpsertResult(
            new=self.new + other.new,
            updated=self.updated + other.updated,
            unchanged=self.unchanged + other.unchanged,
            failed=self.failed + other.failed,
            failures=self.failures + other.failures,
        )


@dataclass(frozen=True, slots=True)
class BatchKey:
    """Names one batch of one feed's import entry. Batch 0 holds items that failed before queueing."""

    entry_id: str
    batch_no: int

    def __str__(self) -> str:
        return f"{self.entry_id}:{self.batch_no}"


# ---------------------------------------------------------------- import history


class Trigger(StrEnum):
    CRON = "cron"
    MANUAL = "manual"
    CLI = "cli"


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"  # every feed completed, not_modified or skipped, and no item failed
    PARTIAL = "partial"  # finished, but some feed or item failed
    FAILED = "failed"  # every feed failed


class EntryStatus(StrEnum):
    QUEUED = "queued"
    FETCHING = "fetching"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    NOT_MODIFIED = "not_modified"
    SKIPPED = "skipped"  # the feed's previous import was still in progress: not fetched twice at once

    @property
    def is_final(self) -> bool:
        return self in (
            EntryStatus.COMPLETED,
            EntryStatus.FAILED,
            EntryStatus.NOT_MODIFIED,
            EntryStatus.SKIPPED,
        )


class ImportEntry(BaseModel):
    """One feed's part of one run: the exact counts and every failure reason.

    Invariant for a completed entry: ``total_fetched == new + updated + unchanged + failed``.
    ``expired`` counts apart: the jobs it no longer listed, which left this feed this time.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    run_id: str
    feed_id: str
    url: str
    name: str
    status: EntryStatus = EntryStatus.QUEUED
    http_status: int | None = None
    bytes: int | None = None
    duration_s: float | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    total_fetched: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    expired: int = 0
    batches: int = 0
    failures: list[dict[str, str]] = Field(default_factory=list)
    error: str | None = None


class ImportRun(BaseModel):
    """One import run over a set of feeds."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    trigger: Trigger
    status: RunStatus = RunStatus.RUNNING
    started_at: datetime
    finished_at: datetime | None = None
    feeds: list[ImportEntry] = Field(default_factory=list)


# ---------------------------------------------------------------- job lifecycle and the change log


class JobStatus(StrEnum):
    ACTIVE = "active"  # some feed lists it, and its end date (if any) has not passed
    EXPIRED = "expired"


class ExpiryReason(StrEnum):
    LEFT_FEEDS = "left its feeds"
    END_DATE = "its end date passed"


class FailureKind(StrEnum):
    """How a feed import failed, for the feed's health: a permanent failure (404, 410, 403, not a
    feed, too large, a document that cannot be parsed at all) counts towards pausing the feed; a
    transient one (timeouts, connections, 429, 5xx, the database away) never does."""

    PERMANENT = "permanent"
    TRANSIENT = "transient"


class ChangeKind(StrEnum):
    NEW = "new"
    UPDATED = "updated"
    EXPIRED = "expired"
    REACTIVATED = "reactivated"


class JobChange(BaseModel):
    """One entry of the change log. ``cursor`` orders the log (see ``JobStore.list_changes``);
    ``fields`` names the fields an update changed; ``feed_id``/``entry_id`` the import that made the
    change (none for an expiry found by the sweep); ``reason`` why a job expired."""

    model_config = ConfigDict(frozen=True)

    cursor: int
    at: datetime
    job_key: str
    kind: ChangeKind
    fields: list[str] = Field(default_factory=list)
    feed_id: str | None = None
    entry_id: str | None = None
    reason: str | None = None


# ---------------------------------------------------------------- webhooks


class WebhookEvent(StrEnum):
    RUN_FINISHED = "run.finished"  # every run that finishes, whatever its status
    RUN_PARTIAL = "run.partial"  # runs that finished partial
    RUN_FAILED = "run.failed"  # runs that failed
    FEED_PAUSED = "feed.paused"  # a feed paused by its health
    JOBS_CHANGED = "jobs.changed"  # the change log, in batches


RUN_EVENTS = (WebhookEvent.RUN_FINISHED, WebhookEvent.RUN_PARTIAL, WebhookEvent.RUN_FAILED)


class WebhookFormat(StrEnum):
    JSON = "json"  # our signed JSON envelope
    SLACK = "slack"  # {"text": ...}, what a Slack incoming webhook takes (run and feed events only)


class WebhookSource(BaseModel):
    """A webhook endpoint as configured (``[[webhooks]]`` of the sources file, or the API). ``secret``
    signs every body (HMAC-SHA256); a stored endpoint without one given gets a random one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=500)
    url: str = Field(pattern=r"^https?://")
    secret: str | None = Field(default=None, min_length=16, max_length=500)
    events: list[WebhookEvent] = Field(min_length=1)
    format: WebhookFormat = WebhookFormat.JSON
    enabled: bool = True

    @model_validator(mode="after")
    def _slack_takes_no_job_changes(self) -> Self:
        if self.format is WebhookFormat.SLACK and WebhookEvent.JOBS_CHANGED in self.events:
            raise ValueError("format 'slack' carries run and feed events only, not jobs.changed")
        return self


class Webhook(WebhookSource):
    """A stored endpoint: its id, its secret, and the cursor of the last change it was sent."""

    id: str
    secret: str = Field(min_length=16, max_length=500)
    changes_cursor: int = 0
    created_at: datetime


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # queued, or being retried
    DELIVERED = "delivered"  # the endpoint answered 2xx
    FAILED = "failed"  # it never did, within the attempts (or answered a 4xx that retrying cannot fix)


class DeliveryAttempt(BaseModel):
    """One POST and its answer: ``status_code`` (none when no answer came), ``error``, the first
    1,000 characters of the answer's body."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    duration_s: float
    status_code: int | None = None
    error: str | None = None
    response: str = ""


class Delivery(BaseModel):
    """One event for one endpoint: the exact body sent, and every attempt with its answer. ``subject``
    names what it is about (a run id, a feed id, a range of change cursors)."""

    model_config = ConfigDict(frozen=True)

    id: str
    webhook_id: str
    event: WebhookEvent
    subject: str
    body: str
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: list[DeliveryAttempt] = Field(default_factory=list)
    created_at: datetime
    finished_at: datetime | None = None
