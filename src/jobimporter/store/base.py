"""The storage port. Docstrings here are the contract every backend honours; the contract test suite
(``tests/contract/test_store.py``) runs unchanged over each backend.

Backends: ``SQLStore`` (SQLite, PostgreSQL) and ``MongoStore`` (MongoDB). Nothing in this contract
assumes SQL: ids are strings made by the domain (``models.new_id``), job identity is
``JobRecord.key``, and every multi-step write is described by its effect, so a document store can
meet it with ``bulk_write`` plus a unique index.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, Self

# typing_extensions's TypedDict: pydantic (the API) can serve these as they are on Python 3.11.
from typing_extensions import TypedDict

from jobimporter.mapping import FieldMapping
from jobimporter.models import (
    BatchKey,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    EntryStatus,
    ExpiryReason,
    FailureKind,
    Feed,
    FeedFormat,
    FeedSource,
    ImportEntry,
    ImportRun,
    ItemFailure,
    JobChange,
    JobRecord,
    JobStatus,
    Priority,
    RunStatus,
    Trigger,
    UpsertResult,
    Webhook,
    WebhookEvent,
    WebhookFormat,
    WebhookSource,
)


class EntryChanges(TypedDict, total=False):
    """Fields of an import entry that ``update_entry`` may set."""

    status: EntryStatus
    http_status: int | None
    bytes: int | None
    duration_s: float | None
    started_at: datetime | None
    finished_at: datetime | None
    total_fetched: int
    batches: int
    error: str | None
    fetch_s: float | None  # time the download took; kept by the store, not part of ImportEntry


class FeedChanges(TypedDict, total=False):
    """Fields of a feed that ``update_feed`` may set."""

    name: str
    url: str
    format: FeedFormat
    enabled: bool
    priority: Priority
    cron: str | None  # None: back to the scheduler's cron
    profile: str
    mapping: FieldMapping | None  # None: no mapping (the format decides)
    max_pages: int


class WebhookChanges(TypedDict, total=False):
    """Fields of a webhook that ``update_webhook`` may set."""

    name: str
    url: str
    secret: str
    events: list[WebhookEvent]
    format: WebhookFormat
    enabled: bool


@dataclass(frozen=True, slots=True)
class DeliveryQuery:
    """Filters of ``list_deliveries``/``count_deliveries``; ``None`` means "any"."""

    webhook_id: str | None = None
    status: DeliveryStatus | None = None
    created_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class RunQuery:
    """Filters of ``list_runs``/``count_runs``; ``None`` means "any". ``since <= started_at < until``;
    ``finished_since <= finished_at`` (runs still open never match it)."""

    trigger: Trigger | None = None
    status: RunStatus | None = None
    feed_id: str | None = None  # runs with an entry for this feed
    since: datetime | None = None
    until: datetime | None = None
    newest_first: bool = True
    finished_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class EntryQuery:
    """Filters of ``list_entries``/``count_entries``. ``trigger``, ``since`` and ``until`` apply to the
    entry's run (``since <= run.started_at < until``), ``status`` to the entry."""

    run_id: str | None = None
    feed_id: str | None = None
    status: EntryStatus | None = None
    trigger: Trigger | None = None
    since: datetime | None = None
    until: datetime | None = None
    newest_first: bool = True


JobSort = Literal["last_changed", "published_at", "first_seen", "last_seen", "title"]


@dataclass(frozen=True, slots=True)
class JobQuery:
    """Filters of ``list_jobs``/``count_jobs``; every given filter must hold.

    - ``q``: case-insensitive substring of the title, the company or ``description_text`` (a literal
      substring: ``%`` and ``_`` match themselves);
    - ``feed_id``: seen in that feed;
    - ``job_type``, ``category``, ``location``, ``employment_type``: an element of that list equal to
      the value (exact, case-sensitive: the values the dashboard offers come from the stored lists);
    - ``workplace``: remote, hybrid or onsite;
    - ``status``: active or expired (``None``: either);
    - ``since <= posted < until`` where posted is ``published_at``, else ``first_seen``;
    - order: ``sort`` (descending when ``descending``), then ``key``; missing values sort last.
    """

    q: str | None = None
    feed_id: str | None = None
    job_type: str | None = None
    category: str | None = None
    location: str | None = None
    employment_type: str | None = None
    workplace: str | None = None
    status: JobStatus | None = None
    since: datetime | None = None
    until: datetime | None = None
    sort: JobSort = "last_changed"
    descending: bool = True


class HistoryEntry(TypedDict):
    """An entry with the trigger of its run (what the history list shows)."""

    entry: ImportEntry
    trigger: Trigger


class FeedHealth(TypedDict):
    """How a feed has been doing, from its import entries (every value ``None`` without history).

    - ``last_status``/``last_run_at``: status of its newest entry (any status) and its run's start;
    - ``last_success_at``: ``finished_at`` of its newest completed or not-modified entry;
    - ``success_rate``: share of completed or not-modified entries among its newest ``window``
      final entries;
    - ``median_fetch_s``: median download time (``fetch_s``) over those entries that recorded one;
    - ``last_error``: ``error`` of its newest final entry (``None`` when that one succeeded cleanly);
    - ``permanent_failures``: its entries that failed permanently (``FailureKind``) since its last
      completed or not-modified entry and since it was last resumed (0 without any).
    """

    last_status: EntryStatus | None
    last_run_at: datetime | None
    last_success_at: datetime | None
    success_rate: float | None
    median_fetch_s: float | None
    last_error: str | None
    permanent_failures: int


class RunPoint(TypedDict):
    """One run in the stats series: its item totals over all entries; ``duration_s`` once finished."""

    run_id: str
    started_at: datetime
    trigger: Trigger
    status: RunStatus
    new: int
    updated: int
    unchanged: int
    failed: int
    duration_s: float | None


class FeedPoint(TypedDict):
    """One feed's entry in one run of the stats series."""

    run_id: str
    started_at: datetime
    fetch_s: float | None
    duration_s: float | None
    new: int
    updated: int
    unchanged: int
    failed: int
    status: EntryStatus


class FeedSeries(TypedDict):
    feed_id: str
    name: str  # the feed's current name; its newest entry's name once the feed is deleted
    points: list[FeedPoint]


class StatsSeries(TypedDict):
    runs: list[RunPoint]
    feeds: list[FeedSeries]


class RunTally(TypedDict):
    trigger: Trigger
    status: RunStatus
    runs: int


class EntryTally(TypedDict):
    """Entries of one feed in one status, with the item counts they hold."""

    feed_id: str
    status: EntryStatus
    entries: int
    new: int
    updated: int
    unchanged: int
    failed: int


class HistoryTotals(TypedDict):
    """All-time figures for monitoring (Prometheus counters): runs by trigger and status, entries and
    their items by feed and status."""

    runs: list[RunTally]
    entries: list[EntryTally]


class StoredJob(TypedDict):
    """A job as the store returns it: the record plus what the store tracks about it.

    ``feed_ids``: every feed it was seen in, live links or not; ``status``: active or expired, with
    ``expired_at`` and ``expiry_reason`` while expired; ``unlisted_at``: when its last live feed link
    went (it waits out the grace period), ``None`` while some feed lists it."""

    record: JobRecord
    first_seen: datetime
    last_seen: datetime
    last_changed: datetime
    feed_ids: list[str]
    status: JobStatus
    expired_at: datetime | None
    expiry_reason: ExpiryReason | None
    unlisted_at: datetime | None


@dataclass(frozen=True, slots=True)
class EntryLifecycle:
    """What an import's own closing of its entry does besides counting (``finalize_entry``).

    - ``complete``: the caller read the feed's whole document without error, so the jobs no batch of
      the entry listed are no longer in the feed;
    - ``expire_after_s``: grace period of a job left without any live feed link (0: it expires at once);
    - ``failure``: how the import failed, if it did;
    - ``pause_after``: that many permanent failures in a row pause the feed (0: never).
    """

    complete: bool = False
    expire_after_s: float = 86_400
    failure: FailureKind | None = None
    pause_after: int = 5


class JobStore(ABC):
    """Where jobs, feeds, import history and the change log live.

    Jobs and their feeds: a job is linked to each feed it was seen in; a link is *live* while that
    feed lists the job and *dead* (``left_at``) once a complete import of the feed no longer did
    (links are never deleted, except with their job). A job is ``active`` while it has a live link
    and its end date (``JobRecord.expires_at``) has not passed; otherwise it expires, and a job seen
    again becomes active again (``finalize_entry``, ``expire_due_jobs``).

    The change log: every job change is appended, in the same transaction as the change itself:
    ``new`` and ``updated`` (with ``fields``, the names of the ``JobRecord`` fields whose values
    differ, the two hashes aside) by ``upsert_batch``; ``expired`` by ``finalize_entry`` and
    ``expire_due_jobs``; ``reactivated`` by ``finalize_entry``. A re-delivered batch or a repeated
    finalize appends nothing. Cursors increase, and changes become visible in cursor order (a change
    commits only after every change with a smaller cursor is visible), so a reader that asks for the
    changes after the last cursor it saw misses nothing and gets nothing twice (``list_changes``).

    Lifecycle: ``await store.start()`` (connects, creates or migrates the schema), then use, then
    ``await store.aclose()``; ``async with store:`` does both. A backend built from a URL owns and
    closes its engine/client; one handed an engine/client leaves it open.

    Errors: every method raises ``StoreError`` (``transient=True`` when a retry may succeed: lost
    connection, deadlock, serialization failure, timeout) and never a driver exception. Lookups of a
    missing id raise ``NotFound``.
    """

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    @abstractmethod
    async def start(self) -> None:
        """Connect and bring the schema to the current version. Safe to call from several processes at
        once (concurrent migrations are serialized)."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release connections this store created."""

    @abstractmethod
    async def ping(self) -> None:
        """Round-trip to the database; raises ``StoreError`` when it is unreachable."""

    # ------------------------------------------------------------ feeds

    @abstractmethod
    async def sync_feeds(self, sources: Sequence[FeedSource]) -> list[Feed]:
        """Make the stored feeds match ``sources`` by URL: add new ones (with fresh ids), update name,
        format, enabled and priority of existing ones, keep their ids and HTTP validators. A feed its
        health paused (``paused_at`` set) stays disabled whatever ``sources`` say. Feeds not in
        ``sources`` are left as they are. Returns the feeds for ``sources`` in the same order."""

    @abstractmethod
    async def list_feeds(self, *, enabled_only: bool = False) -> list[Feed]:
        """All feeds ordered by name, then URL."""

    @abstractmethod
    async def get_feed(self, feed_id: str) -> Feed:
        """One feed; ``NotFound`` if absent."""

    @abstractmethod
    async def save_feed_validators(self, feed_id: str, etag: str | None, last_modified: str | None) -> None:
        """Remember the ETag / Last-Modified of the feed's last *complete* import, for conditional GET."""

    @abstractmethod
    async def add_feed(self, source: FeedSource) -> Feed:
        """Store a new feed with a fresh id and no validators. ``Conflict`` if a feed has that URL."""

    @abstractmethod
    async def update_feed(self, feed_id: str, changes: FeedChanges) -> Feed:
        """Set the given fields and return the feed; no changes returns it as it is. A new URL clears
        the HTTP validators (they belonged to the old one). ``enabled: True`` resumes a feed its
        health paused: ``paused_at`` and ``paused_reason`` are cleared, and its permanent failures
        are counted afresh from now. ``NotFound`` if absent; ``Conflict`` if another feed has the new
        URL."""

    @abstractmethod
    async def delete_feed(self, feed_id: str) -> None:
        """Remove the feed. Its import history and the jobs' links to it stay. ``NotFound`` if absent."""

    @abstractmethod
    async def feed_health(
        self, feed_ids: Sequence[str] | None = None, *, window: int = 20
    ) -> dict[str, FeedHealth]:
        """``FeedHealth`` by feed id for ``feed_ids`` (default: every stored feed); an id without
        entries gets a health of ``None`` values. Computed from the entries in the database."""

    # ------------------------------------------------------------ runs and entries

    @abstractmethod
    async def create_run(self, run: ImportRun) -> None:
        """Store a new run together with its entries (``run.feeds``), atomically."""

    @abstractmethod
    async def get_run(self, run_id: str) -> ImportRun:
        """A run with its entries ordered as created; ``NotFound`` if absent."""

    @abstractmethod
    async def list_runs(
        self, *, limit: int = 20, offset: int = 0, query: RunQuery | None = None
    ) -> list[ImportRun]:
        """Runs matching ``query``, each with its entries, newest first (by ``started_at``, then id;
        oldest first when ``query.newest_first`` is false)."""

    @abstractmethod
    async def count_runs(self, query: RunQuery | None = None) -> int:
        """How many runs match ``query``."""

    @abstractmethod
    async def list_entries(
        self, *, limit: int = 20, offset: int = 0, query: EntryQuery | None = None
    ) -> list[HistoryEntry]:
        """Entries matching ``query`` with their run's trigger, ordered by their run as ``list_runs``
        orders runs, then as created within a run."""

    @abstractmethod
    async def count_entries(self, query: EntryQuery | None = None) -> int:
        """How many entries match ``query``."""

    @abstractmethod
    async def get_entry(self, entry_id: str) -> ImportEntry:
        """One entry; ``NotFound`` if absent."""

    @abstractmethod
    async def update_entry(self, entry_id: str, changes: EntryChanges) -> ImportEntry:
        """Set the given fields and return the entry. An entry in a final status is not moved back to
        a non-final one (the update is ignored and the stored entry returned); this keeps a late or
        re-delivered message from undoing a finished entry."""

    @abstractmethod
    async def finalize_entry(
        self,
        entry_id: str,
        *,
        status: EntryStatus,
        finished_at: datetime,
        error: str | None = None,
        missing_batches: Sequence[tuple[int, int, str]] = (),
        lifecycle: EntryLifecycle | None = None,
    ) -> ImportEntry:
        """Close an entry: its counts and failures become the sum of its recorded batches (see
        ``upsert_batch``), plus, for each ``(batch_no, item_count, reason)`` in ``missing_batches`` that
        has no recorded result, ``item_count`` failed items with that reason. Sets ``status``,
        ``finished_at``, ``error`` and ``duration_s`` (from ``started_at``). Idempotent: calling it
        again recomputes the same figures.

        With ``lifecycle`` (an import closing its own entry), in the same transaction:

        - every job a recorded batch of the entry listed (see ``upsert_batch``) that is expired while
          its end date has not passed becomes active again (``expired_at``/``expiry_reason`` cleared,
          change ``reactivated``); one waiting out its grace period stops waiting;
        - when ``lifecycle.complete`` and every batch ``1..batches`` of the entry has a recorded
          result: every live link of the entry's feed to a job that none of its batches listed goes
          dead, and ``expired`` is how many did. A job left without a live link gets ``unlisted_at``
          = ``finished_at`` and waits ``lifecycle.expire_after_s`` (``expire_due_jobs``), or with 0
          expires at once (``expired_at`` = ``finished_at``, ``LEFT_FEEDS``, change ``expired``). This
          happens once per entry: finalizing it again keeps ``expired`` as it was. An entry that
          failed, lost a batch, or whose caller did not say ``complete`` unlinks nothing;
        - the entry keeps ``lifecycle.failure``; when it is permanent and the feed has
          ``lifecycle.pause_after`` permanent failures (as ``FeedHealth.permanent_failures`` counts
          them) the feed is paused: ``enabled`` false, ``paused_at`` = ``finished_at`` and a
          ``paused_reason`` that says how many imports failed and the last error.

        Correct under concurrent finalizes of feeds that share jobs: a job every one of them dropped
        is left without a live link and expires once."""

    @abstractmethod
    async def reopen_entry(self, entry_id: str) -> ImportEntry:
        """Make an entry importable again (a failed feed job is about to be retried): status
        ``queued``; ``error``, its failure kind, ``started_at``, ``finished_at`` and ``duration_s`` cleared; its run back
        to ``running`` with ``finished_at`` cleared. Counts and failures stay until the entry is
        finalized again, which recomputes them from its batches. The only way back from a final
        status (``update_entry`` never reopens). ``NotFound`` if absent."""

    @abstractmethod
    async def prune_history(self, finished_before: datetime) -> int:
        """Delete the runs that finished before ``finished_before``, with their entries and recorded
        batch results; runs still ``running`` are kept whatever their age. Returns how many runs went.
        Jobs and feeds are not touched."""

    @abstractmethod
    async def busy_feeds(self, feed_ids: Sequence[str]) -> dict[str, str]:
        """For each of ``feed_ids`` whose import is still under way (an entry not final, in a run still
        ``running``): feed id → that run's id. A new run records such a feed as ``skipped`` instead of
        fetching it a second time at once."""

    @abstractmethod
    async def finalize_run_if_done(self, run_id: str, finished_at: datetime) -> ImportRun | None:
        """If every entry of the run is final and the run is still ``running``, set its status
        (``completed`` when all entries completed, were not modified or were skipped and no item failed, ``failed``
        when every entry failed, else ``partial``) and ``finished_at``, and return it. Otherwise return
        ``None``. Exactly one of several concurrent callers gets the run back."""

    @abstractmethod
    async def stats(self, *, limit: int = 50) -> StatsSeries:
        """The newest ``limit`` runs, oldest first, with item totals over their entries; and per feed
        that has an entry in them, one point per entry in the same order. Feeds ordered by name, then
        id. ``duration_s`` is ``finished_at - started_at`` (``None`` while open)."""

    @abstractmethod
    async def history_totals(self) -> HistoryTotals:
        """All-time counts over the whole history (see ``HistoryTotals``); order unspecified."""

    # ------------------------------------------------------------ jobs

    @abstractmethod
    async def upsert_batch(
        self,
        key: BatchKey,
        feed_id: str,
        records: Sequence[JobRecord],
        failures: Sequence[ItemFailure] = (),
        *,
        now: datetime,
        seen_refresh_s: float = 86_400,
        known: Sequence[tuple[str, str]] = (),
    ) -> UpsertResult:
        """Write one batch of one entry, exactly once, and report what happened to each record.

        Effect, atomic per batch:
        - a record whose ``key`` is not stored is inserted (``new``; first_seen = last_seen =
          last_changed = ``now``);
        - a stored record whose ``content_hash`` differs is overwritten (``updated``; last_changed and
          last_seen = ``now``, first_seen kept);
        - a stored record with the same ``content_hash`` is ``unchanged`` and is not written at all,
          except that last_seen is refreshed when older than ``seen_refresh_s`` and a different
          ``raw_hash`` is stored (the feed's text changed in a way normalizing hides, or the
          normalizer's version did), so the next import of it can skip normalizing;
        - the job is linked to ``feed_id`` (the set of feeds it was seen in);
        - ``failures`` (items that failed before reaching the store) count as ``failed``;
        - a record the database refuses fails alone with the reason; the rest of the batch is written;
        - ``known`` lists ``(key, external_id)`` of items the caller found unchanged by their
          ``raw_hash`` (see ``raw_hashes``) and so did not normalize: each stored one is ``unchanged``
          (last_seen refreshed when stale, linked to ``feed_id``); one no longer stored fails with
          a reason saying it will be imported again on the next run;
        - a dead link to ``feed_id`` is live again;
        - each ``new`` and ``updated`` record appends its change (see the class docstring);
        - the keys the batch listed (its records, ``known`` and the ``failures`` that carry a key)
          are recorded with its result: what ``finalize_entry`` reads to tell which jobs left the feed.

        Exactly once: the result is recorded under ``key`` in the same transaction. Calling again with a
        key already recorded writes nothing and returns the recorded result, even from a concurrent
        caller. Correct under concurrent batches that share keys: each key is ``new`` in exactly one.
        """

    @abstractmethod
    async def raw_hashes(self, keys: Sequence[str]) -> dict[str, str]:
        """``raw_hash`` by key for the stored jobs among ``keys`` that have one. An item whose raw hash
        matches is unchanged byte for byte and need not be normalized again."""

    @abstractmethod
    async def batch_results(self, entry_id: str) -> dict[int, UpsertResult]:
        """The recorded result of each batch of an entry, by batch number."""

    @abstractmethod
    async def get_job(self, key: str) -> StoredJob:
        """One job by ``JobRecord.key``; ``NotFound`` if absent."""

    @abstractmethod
    async def list_jobs(
        self,
        *,
        limit: int = 50,
        offset: int = 0,
        feed_id: str | None = None,
        query: JobQuery | None = None,
    ) -> list[StoredJob]:
        """Jobs matching ``query`` (see ``JobQuery``; default: most recently changed first), and seen
        in ``feed_id`` when given."""

    @abstractmethod
    async def count_jobs(self, *, feed_id: str | None = None, query: JobQuery | None = None) -> int:
        """How many stored jobs match ``query`` (and were seen in ``feed_id`` when given)."""

    @abstractmethod
    async def job_hashes(self, keys: Sequence[str]) -> dict[str, str]:
        """``content_hash`` by key for the stored ones among ``keys`` (for tests and diagnostics)."""

    # ------------------------------------------------------------ lifecycle and change log

    @abstractmethod
    async def expire_due_jobs(self, now: datetime, *, expire_after_s: float, limit: int = 1000) -> int:
        """Expire the active jobs that are due, each exactly once, appending a change ``expired``:

        - those whose end date (``expires_at``) is at or before ``now``: ``expired_at`` =
          ``expires_at``, ``END_DATE``;
        - those without a live feed link whose ``unlisted_at`` is ``expire_after_s`` or more before
          ``now``: ``expired_at`` = ``unlisted_at + expire_after_s``, ``LEFT_FEEDS``. One that has a
          live link again only stops waiting (``unlisted_at`` cleared).

        At most ``limit`` jobs per call; returns how many expired. Safe under concurrent callers."""

    @abstractmethod
    async def purge_expired(self, expired_before: datetime) -> int:
        """Delete the jobs expired before ``expired_before`` with their feed links (retention); their
        changes stay in the log. Returns how many went."""

    @abstractmethod
    async def list_changes(
        self, *, after: int = 0, limit: int = 100, job_key: str | None = None
    ) -> list[JobChange]:
        """The changes with a cursor greater than ``after``, in cursor order, at most ``limit`` (of
        one job when ``job_key`` is given). See the class docstring for the ordering promise."""

    @abstractmethod
    async def last_change_cursor(self) -> int:
        """The greatest visible cursor, or 0 for an empty log: read from here to see only what comes."""

    # ------------------------------------------------------------ webhooks

    @abstractmethod
    async def add_webhook(self, source: WebhookSource) -> Webhook:
        """Store a new endpoint with a fresh id (and a random secret when ``source`` has none); its
        ``changes_cursor`` is ``last_change_cursor()``, so it is sent the changes from now on.
        ``Conflict`` if an endpoint has that URL."""

    @abstractmethod
    async def sync_webhooks(self, sources: Sequence[WebhookSource]) -> list[Webhook]:
        """Make the stored endpoints match ``sources`` by URL, as ``sync_feeds`` does for feeds: new
        ones added (as ``add_webhook``), the others' name, events, format, enabled and (when given)
        secret updated; ids and cursors kept. Returns them in the order of ``sources``."""

    @abstractmethod
    async def list_webhooks(self, *, enabled_only: bool = False) -> list[Webhook]:
        """Every endpoint, by name then URL."""

    @abstractmethod
    async def get_webhook(self, webhook_id: str) -> Webhook:
        """One endpoint; ``NotFound`` if absent."""

    @abstractmethod
    async def update_webhook(self, webhook_id: str, changes: WebhookChanges) -> Webhook:
        """Set the given fields; ``NotFound`` if absent, ``Conflict`` if another has the new URL."""

    @abstractmethod
    async def delete_webhook(self, webhook_id: str) -> None:
        """Remove the endpoint; its deliveries stay. ``NotFound`` if absent."""

    @abstractmethod
    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """Store the deliveries whose id is not stored yet; returns those, in order. A delivery's id
        names its endpoint and subject, so adding the same one twice (two dispatchers, a restart)
        stores it once."""

    @abstractmethod
    async def add_changes_delivery(self, delivery: Delivery, *, after: int, until: int) -> bool:
        """Atomically: if the endpoint's ``changes_cursor`` is still ``after``, move it to ``until``
        and store ``delivery`` (the changes after ``after`` up to ``until``), and return True;
        otherwise change nothing and return False. So each change goes out once per endpoint,
        whoever dispatches."""

    @abstractmethod
    async def record_attempt(
        self, delivery_id: str, attempt: DeliveryAttempt, status: DeliveryStatus
    ) -> Delivery:
        """Append ``attempt`` to the delivery and set its status (``finished_at`` = the attempt's time
        once it is no longer pending). ``NotFound`` if absent."""

    @abstractmethod
    async def get_delivery(self, delivery_id: str) -> Delivery:
        """One delivery; ``NotFound`` if absent."""

    @abstractmethod
    async def list_deliveries(
        self, *, limit: int = 50, offset: int = 0, query: DeliveryQuery | None = None
    ) -> list[Delivery]:
        """Deliveries matching ``query``, newest first (``created_at``, then id)."""

    @abstractmethod
    async def count_deliveries(self, query: DeliveryQuery | None = None) -> int:
        """How many deliveries match ``query``."""


# The fields an ``updated`` change names when their values differ: the record's content, without its
# identity (``key``) and the two hashes (they differ whenever anything does).
CHANGE_FIELDS: tuple[str, ...] = tuple(
    name for name in JobRecord.model_fields if name not in ("key", "content_hash", "raw_hash")
)


def changed_fields(previous: Mapping[str, Any], record: Mapping[str, Any]) -> list[str]:
    """Names of ``CHANGE_FIELDS`` whose values differ between the stored job and the record that
    overwrites it (every backend names an update's fields this way)."""
    return [name for name in CHANGE_FIELDS if previous.get(name) != record.get(name)]


def describe(result: UpsertResult) -> dict[str, Any]:
    """A JSON-friendly form of an UpsertResult (used in queue return values and events)."""
    return {
        "new": result.new,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "failed": result.failed,
        "failures": [f.to_dict() for f in result.failures],
    }
