"""Slack's AI surfaces: per-preset Slack behaviour (suggested prompts, follow-ups, escalation, external users),
the message as asked next to the standalone question searched, assistant pane threads, escalations, refusals,
and the files a question came with.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 07:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("presets") as batch:
        batch.add_column(sa.Column("suggested_prompts", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("follow_ups", sa.Boolean(), server_default=sa.true(), nullable=False))
        batch.add_column(sa.Column("escalation_usergroup", sa.String(), nullable=True))
        batch.add_column(sa.Column("escalation_channel", sa.String(), nullable=True))
        batch.add_column(sa.Column("allow_external", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("ranking_logs") as batch:
        batch.add_column(sa.Column("asked", sa.Text(), nullable=True))
    with op.batch_alter_table("answer_jobs") as batch:
        batch.add_column(sa.Column("attachments", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("reply_ts", sa.String(), nullable=True))
        batch.drop_constraint(op.f("ck_answer_jobs_kind"), type_="check")
        batch.create_check_constraint("kind", "kind IN ('mention', 'command', 'assistant')")
    op.create_index("ix_answer_jobs_thread", "answer_jobs", ["channel", "thread_ts"])
    op.create_table(
        "escalations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ranking_id", sa.Integer(), nullable=False),
        sa.Column("user", sa.String(), nullable=True),
        sa.Column("via", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("via IN ('usergroup', 'channel')", name=op.f("ck_escalations_via")),
        sa.ForeignKeyConstraint(
            ["ranking_id"], ["ranking_logs.id"], name=op.f("fk_escalations_ranking_id_ranking_logs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalations")),
    )
    op.create_index(op.f("ix_escalations_ranking_id"), "escalations", ["ranking_id"])
    op.create_table(
        "slack_refusals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=True),
        sa.Column("user", sa.String(), nullable=True),
        sa.Column("user_team", sa.String(), nullable=True),
        sa.Column("question", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slack_refusals")),
    )
    op.create_index(op.f("ix_slack_refusals_created_at"), "slack_refusals", ["created_at"])
    op.create_table(
        "assistant_threads",
        sa.Column("channel_id", sa.String(), nullable=False),
        sa.Column("thread_ts", sa.String(), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("channel_id", "thread_ts", name=op.f("pk_assistant_threads")),
    )
    op.create_index(op.f("ix_assistant_threads_updated_at"), "assistant_threads", ["updated_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_assistant_threads_updated_at"), table_name="assistant_threads")
    op.drop_table("assistant_threads")
    op.drop_index(op.f("ix_slack_refusals_created_at"), table_name="slack_refusals")
    op.drop_table("slack_refusals")
    op.drop_index(op.f("ix_escalations_ranking_id"), table_name="escalations")
    op.drop_table("escalations")
    op.drop_index("ix_answer_jobs_thread", table_name="answer_jobs")
    op.execute("DELETE FROM answer_jobs WHERE kind = 'assistant'")
    with op.batch_alter_table("answer_jobs") as batch:
        batch.drop_constraint(op.f("ck_answer_jobs_kind"), type_="check")
        batch.create_check_constraint("kind", "kind IN ('mention', 'command')")
        batch.drop_column("reply_ts")
        batch.drop_column("attachments")
    with op.batch_alter_table("ranking_logs") as batch:
        batch.drop_column("asked")
    with op.batch_alter_table("presets") as batch:
        for column in ("allow_external", "escalation_channel", "escalation_usergroup", "follow_ups", "suggested_prompts"):
            batch.drop_column(column)
