"""Per preset, whether answers in its channels are posted in the thread for everyone or shown only to the asker.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 13:35:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("presets") as batch:
        batch.add_column(sa.Column("reply_visibility", sa.String(), server_default="thread", nullable=False))
        batch.create_check_constraint("reply_visibility", "reply_visibility IN ('thread', 'ephemeral')")


def downgrade() -> None:
    with op.batch_alter_table("presets") as batch:
        batch.drop_constraint(op.f("ck_presets_reply_visibility"), type_="check")
        batch.drop_column("reply_visibility")
