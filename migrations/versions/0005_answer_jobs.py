"""Durable work: every acknowledged question as a row until it is answered or its asker is told it failed; a
ranking kept on disk through a database outage is written once (`ranking_logs.record_key`).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 23:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "answer_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("state", sa.String(), server_default="queued", nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(), nullable=True),
        sa.Column("ts", sa.String(), nullable=True),
        sa.Column("thread_ts", sa.String(), nullable=True),
        sa.Column("user", sa.String(), nullable=True),
        sa.Column("response_url", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lease_owner", sa.String(), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ranking_id", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("state IN ('queued', 'answering', 'answered', 'failed')", name=op.f("ck_answer_jobs_state")),
        sa.CheckConstraint("kind IN ('mention', 'command')", name=op.f("ck_answer_jobs_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answer_jobs")),
    )
    op.create_index(op.f("ix_answer_jobs_state"), "answer_jobs", ["state"])
    with op.batch_alter_table("ranking_logs") as batch:
        batch.add_column(sa.Column("record_key", sa.String(), nullable=True))
        batch.create_unique_constraint(op.f("uq_ranking_logs_record_key"), ["record_key"])


def downgrade() -> None:
    with op.batch_alter_table("ranking_logs") as batch:
        batch.drop_constraint(op.f("uq_ranking_logs_record_key"), type_="unique")
        batch.drop_column("record_key")
    op.drop_index(op.f("ix_answer_jobs_state"), table_name="answer_jobs")
    op.drop_table("answer_jobs")
