"""The SQL schema as SQLAlchemy Core tables: what ``SQLStore`` queries against.

Alembic's ``migrations/versions`` create the same tables in the database; the contract tests compare
the two so they cannot drift apart. Timestamps use ``UTCDateTime`` so Python always sees aware UTC
datetimes, whichever dialect stores them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# Deterministic constraint names, so migrations can refer to them on every dialect.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

# Alembic's bookkeeping table, named so it cannot clash with another app's migrations in a shared
# database.
VERSION_TABLE = "jobimporter_schema_version"


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every dialect.

    PostgreSQL keeps ``timestamptz``; SQLite keeps naive text, which we write as UTC and read back
    as aware UTC. A naive datetime is taken as UTC, as ``normalize`` and asyncpg also do.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"store: expected a datetime from the database, got {type(value).__name__}")
        return as_utc(value)


def as_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime; naive means UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _counts() -> list[sa.Column[int]]:
    return [
        sa.Column(name, sa.Integer, nullable=False, server_default="0")
        for name in ("new", "updated", "unchanged", "failed")
    ]


feeds = sa.Table(
    "feeds",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False, unique=True),
    sa.Column("format", sa.String(32), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("priority", sa.String(16), nullable=False),
    sa.Column("cron", sa.String(255)),  # NULL: the scheduler's cron
    sa.Column("profile", sa.String(64), nullable=False, server_default="auto"),  # 0004
    sa.Column("mapping", sa.JSON),  # 0004: the feed's field mapping, NULL: none
    sa.Column("max_pages", sa.Integer, nullable=False, server_default="50"),  # 0004
    sa.Column("etag", sa.Text),
    sa.Column("last_modified", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("paused_at", UTCDateTime),  # 0005: paused by its health (enabled false), NULL: not
    sa.Column("paused_reason", sa.Text),  # 0005
    sa.Column("resumed_at", UTCDateTime),  # 0005: its permanent failures count from here
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Index(None, "started_at"),
    sa.Index(None, "trigger", "started_at"),  # 0002: history filtered by trigger
)

entries = sa.Table(
    "entries",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("feed_id", sa.String(64), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("http_status", sa.Integer),
    sa.Column("bytes", sa.BigInteger),
    sa.Column("duration_s", sa.Float),
    sa.Column("started_at", UTCDateTime),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("total_fetched", sa.Integer, nullable=False, server_default="0"),
    *_counts(),
    sa.Column("batches", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failures", sa.JSON, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("fetch_s", sa.Float),  # 0002: download time, for feed health and the stats series
    sa.Column("expired", sa.Integer, nullable=False, server_default="0"),  # 0005: jobs that left the feed
    sa.Column("failure_kind", sa.String(16)),  # 0005: permanent | transient, NULL: did not fail
    sa.Column("links_checked_at", UTCDateTime),  # 0005: when its unlisted jobs were unlinked (once)
    sa.Index(None, "run_id", "position"),
    sa.Index(None, "feed_id", "started_at"),
    sa.Index(None, "status"),  # 0002: history filters and feed health
)

# No foreign key to entries: a batch's result is recorded by the job path, which must not depend on
# the history rows (a document store could not enforce it either).
batches = sa.Table(
    "batches",
    metadata,
    sa.Column("entry_id", sa.String(64), primary_key=True),
    sa.Column("batch_no", sa.Integer, primary_key=True),
    *_counts(),
    sa.Column("failures", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # 0005: the keys the batch listed, until its entry has unlinked the jobs its feed no longer lists
    sa.Column("job_keys", sa.JSON),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(255), nullable=False),
    sa.Column("external_id", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("company", sa.Text),
    sa.Column("locations", sa.JSON, nullable=False),
    sa.Column("job_types", sa.JSON, nullable=False),
    sa.Column("categories", sa.JSON, nullable=False),
    sa.Column("description_html", sa.Text, nullable=False),
    sa.Column("description_text", sa.Text, nullable=False),
    sa.Column("url", sa.Text),
    sa.Column("published_at", UTCDateTime),
    sa.Column("salary_min", sa.Float),
    sa.Column("salary_max", sa.Float),
    sa.Column("salary_currency", sa.String(16)),
    sa.Column("salary_period", sa.String(32)),
    sa.Column("logo_url", sa.Text),
    sa.Column("apply_url", sa.Text),  # 0004
    sa.Column("workplace", sa.String(16)),  # 0004: remote, hybrid, onsite
    sa.Column("employment_types", sa.JSON, nullable=False, server_default="[]"),  # 0004
    sa.Column("expires_at", UTCDateTime),  # 0004
    sa.Column("extra", sa.JSON, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("raw_hash", sa.String(64)),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("last_seen", UTCDateTime, nullable=False),
    sa.Column("last_changed", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.String(160), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),  # 0005
    sa.Column("expired_at", UTCDateTime),  # 0005
    sa.Column("expiry_reason", sa.Text),  # 0005
    sa.Column("unlisted_at", UTCDateTime),  # 0005: when its last live feed link went
    sa.UniqueConstraint("source", "external_id"),
    sa.Index(None, "last_changed"),
    sa.Index(None, "published_at"),
    sa.Index(None, "expires_at"),  # 0005: the expiry sweep
    sa.Index(None, "unlisted_at"),  # 0005
    sa.Index(None, "status", "expired_at"),  # 0005: the status filter and the retention purge
)

job_feeds = sa.Table(
    "job_feeds",
    metadata,
    sa.Column("job_key", sa.String(64), sa.ForeignKey("jobs.key", ondelete="CASCADE"), primary_key=True),
    sa.Column("feed_id", sa.String(64), primary_key=True),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("last_seen", UTCDateTime, nullable=False),
    sa.Column("left_at", UTCDateTime),  # 0005: dead link (the feed no longer lists the job), NULL: live
    sa.Index(None, "feed_id"),
)

# 0005: the change log. ``seq`` is the cursor; appends commit in its order (see sql_changes). No foreign
# key to jobs: a purged job's changes stay.
changes = sa.Table(
    "changes",
    metadata,
    sa.Column(
        "seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("job_key", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("fields", sa.JSON, nullable=False),
    sa.Column("feed_id", sa.String(64)),
    sa.Column("entry_id", sa.String(64)),
    sa.Column("reason", sa.Text),
    sa.Index(None, "job_key", "seq"),
    sqlite_autoincrement=True,  # cursors never reused
)

# 0005: webhook endpoints and every delivery to them, with each attempt's answer.
webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False, unique=True),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("events", sa.JSON, nullable=False),
    sa.Column("format", sa.String(16), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("changes_cursor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("webhook_id", sa.String(64), nullable=False),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Index(None, "webhook_id", "created_at"),
    sa.Index(None, "status", "created_at"),
)

# The columns a changed record overwrites; identity (key) and the store's own bookkeeping
# (first_seen, created_by) are kept.
JOB_CONTENT_COLUMNS: tuple[str, ...] = (
    "source",
    "external_id",
    "title",
    "company",
    "locations",
    "job_types",
    "categories",
    "description_html",
    "description_text",
    "url",
    "published_at",
    "salary_min",
    "salary_max",
    "salary_currency",
    "salary_period",
    "logo_url",
    "apply_url",
    "workplace",
    "employment_types",
    "expires_at",
    "extra",
    "content_hash",
    "raw_hash",
)
