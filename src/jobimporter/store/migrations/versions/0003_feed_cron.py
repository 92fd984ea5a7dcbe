"""Per-feed schedule: a feed's own cron, NULL for the scheduler's.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Frozen like 0001: it does not import ``schema.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feeds") as batch:
        batch.add_column(sa.Column("cron", sa.String(255)))


def downgrade() -> None:
    with op.batch_alter_table("feeds") as batch:
        batch.drop_column("cron")
