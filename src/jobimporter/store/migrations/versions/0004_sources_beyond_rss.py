"""Sources beyond RSS: jobs get an apply URL, a workplace, employment types and an expiry; feeds get
a board profile, a field mapping and a page cap.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

Frozen like 0001: it does not import ``schema.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("apply_url", sa.Text))
        batch.add_column(sa.Column("workplace", sa.String(16)))
        batch.add_column(sa.Column("employment_types", sa.JSON, nullable=False, server_default="[]"))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True)))
    with op.batch_alter_table("feeds") as batch:
        batch.add_column(sa.Column("profile", sa.String(64), nullable=False, server_default="auto"))
        batch.add_column(sa.Column("mapping", sa.JSON))
        batch.add_column(sa.Column("max_pages", sa.Integer, nullable=False, server_default="50"))


def downgrade() -> None:
    with op.batch_alter_table("feeds") as batch:
        batch.drop_column("max_pages")
        batch.drop_column("mapping")
        batch.drop_column("profile")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("expires_at")
        batch.drop_column("employment_types")
        batch.drop_column("workplace")
        batch.drop_column("apply_url")
