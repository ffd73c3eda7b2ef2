"""Preset versions record the preset's source and tag filters, which change what is retrieved like the other
versioned fields.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 12:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("preset_versions") as batch:
        batch.add_column(sa.Column("source_filter", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("tag_filter", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("preset_versions") as batch:
        batch.drop_column("tag_filter")
        batch.drop_column("source_filter")
