"""Request and response models of the admin API (``docs/api-contract.md``).

Run and entry objects subclass the domain models, so they have exactly the fields of
``jobimporter import --json`` plus what the API adds (``totals`` and ``duration_s``; ``trigger``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, Self, TypeVar, cast
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from jobimporter.mapping import FieldMapping
from jobimporter.models import (
    DEFAULT_MAX_PAGES,
    MAPPED_NEEDS_A_MAPPING,
    Cron,
    EntryStatus,
    ExpiryReason,
    Feed,
    FeedFormat,
    ImportEntry,
    ImportRun,
    JobChange,
    JobStatus,
    Priority,
    Trigger,
    Webhook,
    WebhookEvent,
    WebhookFormat,
    WebhookSource,
)
from jobimporter.parse import profiles
from jobimporter.store.base import FeedChanges, FeedHealth, StoredJob, WebhookChanges

T = TypeVar("T")


class ListPage(BaseModel, Generic[T]):
    """One page of a list: ``page`` is 1-based; ``total`` counts every match."""

    items: list[T]
    total: int
    page: int
    page_size: int


# ---------------------------------------------------------------- runs and entries


class Totals(BaseModel):
    total_fetched: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    expired: int = 0  # jobs that left their feeds in this run


class RunOut(ImportRun):
    """A run as ``import --json`` prints it, plus its entries' totals and its duration (open: None)."""

    totals: Totals
    duration_s: float | None

    @classmethod
    def of(cls, run: ImportRun) -> RunOut:
        sums = {name: sum(getattr(e, name) for e in run.feeds) for name in Totals.model_fields}
        duration = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
        return cls(**dict(run), totals=Totals(**sums), duration_s=duration)


class EntryOut(ImportEntry):
    """One feed's import in one run, with its run's trigger."""

    trigger: Trigger


class RunCreate(BaseModel):
    """``feed_ids``: the feeds to import (disabled ones too); omitted: every enabled feed."""

    model_config = ConfigDict(extra="forbid")

    feed_ids: list[str] | None = Field(default=None, min_length=1)


class RunAccepted(BaseModel):
    run_id: str


# ---------------------------------------------------------------- feeds


def _web_url(value: str) -> str:
    """An http(s) URL with a host; the scheme in lower case (``HTTPS://x`` is ``https://x``)."""
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host name")
    return parts.scheme + value[len(parts.scheme) :]


WebUrl = Annotated[str, AfterValidator(_web_url)]


def _profile_name(value: str) -> str:
    if not profiles.known(value):
        raise ValueError(f"unknown profile (known: auto, none, {', '.join(sorted(profiles.PROFILES))})")
    return value


ProfileName = Annotated[str, AfterValidator(_profile_name)]


class FeedHealthOut(BaseModel):
    last_status: EntryStatus | None = None
    last_run_at: datetime | None = None
    last_success_at: datetime | None = None
    success_rate: float | None = None
    median_fetch_s: float | None = None
    last_error: str | None = None
    permanent_failures: int = 0


class FeedOut(Feed):
    health: FeedHealthOut

    @classmethod
    def of(cls, feed: Feed, health: FeedHealth | None) -> FeedOut:
        return cls(**dict(feed), health=FeedHealthOut(**health) if health else FeedHealthOut())


class FeedCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=500)
    url: WebUrl
    format: FeedFormat = FeedFormat.AUTO
    enabled: bool = True
    priority: Priority = Priority.NORMAL
    cron: Cron | None = None
    profile: ProfileName = "auto"
    mapping: FieldMapping | None = None
    max_pages: int = Field(default=DEFAULT_MAX_PAGES, ge=1, le=10_000)

    @model_validator(mode="after")
    def _mapped_has_a_mapping(self) -> Self:
        if self.format is FeedFormat.MAPPED and self.mapping is None:
            raise ValueError(MAPPED_NEEDS_A_MAPPING)
        return self


class FeedUpdate(BaseModel):
    """Any of the fields; one sent as null is left as it is. ``cron: ""`` returns the feed to the
    scheduler's cron."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=500)
    url: WebUrl | None = None
    format: FeedFormat | None = None
    enabled: bool | None = None
    priority: Priority | None = None
    cron: Cron | Literal[""] | None = None
    profile: ProfileName | None = None
    mapping: FieldMapping | Literal[""] | None = None
    max_pages: int | None = Field(default=None, ge=1, le=10_000)

    def changes(self) -> FeedChanges:
        changes: dict[str, Any] = {
            name: getattr(self, name) for name in self.model_fields_set if getattr(self, name) is not None
        }
        for name in ("cron", "mapping"):  # "" clears: the scheduler's cron, no mapping
            if changes.get(name) == "":
                changes[name] = None
        return cast(FeedChanges, changes)  # the fields are FeedChanges' own, validated above


# ---------------------------------------------------------------- jobs


class JobOut(BaseModel):
    key: str
    source: str
    external_id: str
    title: str
    company: str | None
    locations: list[str]
    job_types: list[str]
    categories: list[str]
    url: str | None
    published_at: datetime | None
    salary_min: float | None
    salary_max: float | None
    salary_currency: str | None
    salary_period: str | None
    logo_url: str | None
    apply_url: str | None
    workplace: str | None
    employment_types: list[str]
    expires_at: datetime | None
    first_seen: datetime
    last_seen: datetime
    last_changed: datetime
    feed_ids: list[str]
    status: JobStatus
    expired_at: datetime | None
    expiry_reason: ExpiryReason | None
    unlisted_at: datetime | None

    @classmethod
    def fields_of(cls, job: StoredJob) -> dict[str, Any]:
        record = job["record"].model_dump()
        stamps = {k: v for k, v in job.items() if k != "record"}
        return {k: v for k, v in (record | stamps).items() if k in cls.model_fields}

    @classmethod
    def of(cls, job: StoredJob) -> JobOut:
        return cls(**cls.fields_of(job))


class JobDetail(JobOut):
    """A job with its description: ``description_html`` was sanitized when it was imported."""

    description_html: str
    description_text: str
    extra: dict[str, Any]

    @classmethod
    def of(cls, job: StoredJob) -> JobDetail:
        return cls(**cls.fields_of(job))


class ChangesPage(BaseModel):
    """The changes after the cursor asked for, oldest first; ``next`` is the cursor to ask with next
    time (the last change's, or the one given when there is nothing new); ``more``: a full page came,
    ask again at once."""

    items: list[JobChange]
    next: int
    more: bool


# ---------------------------------------------------------------- webhooks


class WebhookOut(BaseModel):
    """An endpoint as the API shows it: never its secret."""

    id: str
    name: str
    url: str
    events: list[WebhookEvent]
    format: WebhookFormat
    enabled: bool
    changes_cursor: int
    created_at: datetime

    @classmethod
    def of(cls, webhook: Webhook) -> WebhookOut:
        return cls(**webhook.model_dump(exclude={"secret"}))


class WebhookCreated(WebhookOut):
    """The answer to a new endpoint: the only time its secret is shown."""

    secret: str

    @classmethod
    def created(cls, webhook: Webhook) -> WebhookCreated:
        return cls(**webhook.model_dump())


class WebhookCreate(BaseModel):
    """A new endpoint; without ``secret`` one is made (and shown once, in the answer)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=500)
    url: WebUrl
    secret: str | None = Field(default=None, min_length=16, max_length=500)
    events: list[WebhookEvent] = Field(min_length=1)
    format: WebhookFormat = WebhookFormat.JSON
    enabled: bool = True

    def source(self) -> WebhookSource:
        return WebhookSource(**self.model_dump())


class WebhookUpdate(BaseModel):
    """Any of the fields; one sent as null is left as it is."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=500)
    url: WebUrl | None = None
    secret: str | None = Field(default=None, min_length=16, max_length=500)
    events: list[WebhookEvent] | None = Field(default=None, min_length=1)
    format: WebhookFormat | None = None
    enabled: bool | None = None

    def changes(self) -> WebhookChanges:
        given = {
            name: getattr(self, name) for name in self.model_fields_set if getattr(self, name) is not None
        }
        return cast(WebhookChanges, given)


# ---------------------------------------------------------------- queue, dead letters, stats


class QueueOut(BaseModel):
    queues: dict[str, dict[str, int]]


class Retried(BaseModel):
    retried: int


class Status(BaseModel):
    status: str
