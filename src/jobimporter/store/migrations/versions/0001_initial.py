"""Initial schema: feeds, runs, entries, batches, jobs, job_feeds.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Frozen: later changes go into new revisions, never here, and this file does not import
``schema.py`` (which describes the *current* tables).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _counts() -> list[sa.Column[int]]:
    return [
        sa.Column(name, sa.Integer, nullable=False, server_default="0")
        for name in ("new", "updated", "unchanged", "failed")
    ]


def _create_feeds() -> None:
    op.create_table(
        "feeds",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("etag", sa.Text),
        sa.Column("last_modified", sa.Text),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feeds"),
        sa.UniqueConstraint("url", name="uq_feeds_url"),
    )


def _create_runs_and_entries() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _ts("started_at", nullable=False),
        _ts("finished_at"),
        sa.PrimaryKeyConstraint("run_id", name="pk_runs"),
    )
    op.create_index("ix_runs_started_at", "runs", ["started_at"])
    op.create_table(
        "entries",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("feed_id", sa.String(64), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("http_status", sa.Integer),
        sa.Column("bytes", sa.BigInteger),
        sa.Column("duration_s", sa.Float),
        _ts("started_at"),
        _ts("finished_at"),
        sa.Column("total_fetched", sa.Integer, nullable=False, server_default="0"),
        *_counts(),
        sa.Column("batches", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failures", sa.JSON, nullable=False),
        sa.Column("error", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_entries"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name="fk_entries_run_id_runs", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_entries_run_id_position", "entries", ["run_id", "position"])
    op.create_index("ix_entries_feed_id_started_at", "entries", ["feed_id", "started_at"])
    op.create_table(
        "batches",
        sa.Column("entry_id", sa.String(64), nullable=False),
        sa.Column("batch_no", sa.Integer, nullable=False),
        *_counts(),
        sa.Column("failures", sa.JSON, nullable=False),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint("entry_id", "batch_no", name="pk_batches"),
    )


def _create_jobs() -> None:
    op.create_table(
        "jobs",
        sa.Column("key", sa.String(64), nullable=False),
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
        _ts("published_at"),
        sa.Column("salary_min", sa.Float),
        sa.Column("salary_max", sa.Float),
        sa.Column("salary_currency", sa.String(16)),
        sa.Column("salary_period", sa.String(32)),
        sa.Column("logo_url", sa.Text),
        sa.Column("extra", sa.JSON, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("raw_hash", sa.String(64)),
        _ts("first_seen", nullable=False),
        _ts("last_seen", nullable=False),
        _ts("last_changed", nullable=False),
        sa.Column("created_by", sa.String(160), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_jobs"),
        sa.UniqueConstraint("source", "external_id", name="uq_jobs_source_external_id"),
    )
    op.create_index("ix_jobs_last_changed", "jobs", ["last_changed"])
    op.create_index("ix_jobs_published_at", "jobs", ["published_at"])
    op.create_table(
        "job_feeds",
        sa.Column("job_key", sa.String(64), nullable=False),
        sa.Column("feed_id", sa.String(64), nullable=False),
        _ts("first_seen", nullable=False),
        _ts("last_seen", nullable=False),
        sa.PrimaryKeyConstraint("job_key", "feed_id", name="pk_job_feeds"),
        sa.ForeignKeyConstraint(
            ["job_key"], ["jobs.key"], name="fk_job_feeds_job_key_jobs", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_job_feeds_feed_id", "job_feeds", ["feed_id"])


def upgrade() -> None:
    _create_feeds()
    _create_runs_and_entries()
    _create_jobs()


def downgrade() -> None:
    for table in ("job_feeds", "jobs", "batches", "entries", "runs", "feeds"):
        op.drop_table(table)
