"""Admin API: the entries' download time, and indexes for the history filters and feed health.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

Frozen like 0001: it does not import ``schema.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        batch.add_column(sa.Column("fetch_s", sa.Float))
    op.create_index("ix_entries_status", "entries", ["status"])
    op.create_index("ix_runs_trigger_started_at", "runs", ["trigger", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_trigger_started_at", "runs")
    op.drop_index("ix_entries_status", "entries")
    with op.batch_alter_table("entries") as batch:
        batch.drop_column("fetch_s")
