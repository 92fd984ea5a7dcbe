"""Job lifecycle, feed health, the change log and webhooks: jobs get a status (active, expired) and
the time their last live feed link went; feed links can go dead; entries count the jobs that left
their feed and keep how they failed; batches keep the keys they listed until their entry has used
them; feeds can be paused by their health; the change log; webhook endpoints and their deliveries.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

Frozen like 0001: it does not import ``schema.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    _lifecycle_columns()
    _changes_table()
    _webhook_tables()


def _lifecycle_columns() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="active"))
        batch.add_column(sa.Column("expired_at", _TIME))
        batch.add_column(sa.Column("expiry_reason", sa.Text))
        batch.add_column(sa.Column("unlisted_at", _TIME))
    op.create_index("ix_jobs_expires_at", "jobs", ["expires_at"])
    op.create_index("ix_jobs_unlisted_at", "jobs", ["unlisted_at"])
    op.create_index("ix_jobs_status_expired_at", "jobs", ["status", "expired_at"])
    with op.batch_alter_table("job_feeds") as batch:
        batch.add_column(sa.Column("left_at", _TIME))
    with op.batch_alter_table("entries") as batch:
        batch.add_column(sa.Column("expired", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("failure_kind", sa.String(16)))
        batch.add_column(sa.Column("links_checked_at", _TIME))
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("job_keys", sa.JSON))
    with op.batch_alter_table("feeds") as batch:
        batch.add_column(sa.Column("paused_at", _TIME))
        batch.add_column(sa.Column("paused_reason", sa.Text))
        batch.add_column(sa.Column("resumed_at", _TIME))


def _changes_table() -> None:
    op.create_table(
        "changes",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("job_key", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("fields", sa.JSON, nullable=False),
        sa.Column("feed_id", sa.String(64)),
        sa.Column("entry_id", sa.String(64)),
        sa.Column("reason", sa.Text),
        sa.PrimaryKeyConstraint("seq", name="pk_changes"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_changes_job_key_seq", "changes", ["job_key", "seq"])


def _webhook_tables() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("events", sa.JSON, nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("changes_cursor", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhooks"),
        sa.UniqueConstraint("url", name="uq_webhooks_url"),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("webhook_id", sa.String(64), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.JSON, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("finished_at", _TIME),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
    )
    op.create_index("ix_deliveries_webhook_id_created_at", "deliveries", ["webhook_id", "created_at"])
    op.create_index("ix_deliveries_status_created_at", "deliveries", ["status", "created_at"])


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_table("webhooks")
    op.drop_table("changes")
    with op.batch_alter_table("feeds") as batch:
        for name in ("resumed_at", "paused_reason", "paused_at"):
            batch.drop_column(name)
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("job_keys")
    with op.batch_alter_table("entries") as batch:
        for name in ("links_checked_at", "failure_kind", "expired"):
            batch.drop_column(name)
    with op.batch_alter_table("job_feeds") as batch:
        batch.drop_column("left_at")
    for index in ("ix_jobs_status_expired_at", "ix_jobs_unlisted_at", "ix_jobs_expires_at"):
        op.drop_index(index, "jobs")
    with op.batch_alter_table("jobs") as batch:
        for name in ("unlisted_at", "expiry_reason", "expired_at", "status"):
            batch.drop_column(name)
