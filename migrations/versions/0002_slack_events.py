"""Slack events the bot has taken on: deduplication by event_id and by (channel, ts).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 00:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slack_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(), nullable=True),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("ts", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slack_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_slack_events_event_id")),
        sa.UniqueConstraint("channel", "ts", name="uq_slack_events_channel_ts"),
    )


def downgrade() -> None:
    op.drop_table("slack_events")
