"""Initial schema: presets, channel bindings, ranking logs, ranked candidates, feedback.

Revision ID: 0001
Revises:
Create Date: 2025-11-22 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Copied, not imported from store.models: a revision must keep meaning what it meant when it was written.
DEFAULT_INSTRUCTION = (
    "Given a question from a sales or support colleague, "
    "retrieve passages from the product documentation that answer it"
)


def upgrade() -> None:
    presets = op.create_table(
        "presets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team", sa.String(), server_default="default", nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("instruction", sa.Text(), nullable=False),
        sa.Column("candidates_k", sa.Integer(), server_default=sa.text("20"), nullable=False),
        sa.Column("top_n", sa.Integer(), server_default=sa.text("3"), nullable=False),
        sa.Column("min_score", sa.Float(), server_default=sa.text("0.0"), nullable=False),
        sa.Column("collection", sa.String(), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_presets")),
        sa.UniqueConstraint("name", name=op.f("uq_presets_name")),
    )

    op.create_table(
        "channel_bindings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.String(), nullable=False),
        sa.Column("preset_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["preset_id"],
            ["presets.id"],
            name=op.f("fk_channel_bindings_preset_id_presets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_bindings")),
        sa.UniqueConstraint("channel_id", name=op.f("uq_channel_bindings_channel_id")),
    )

    op.create_table(
        "ranking_logs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(), nullable=True),
        sa.Column("user", sa.String(), nullable=True),
        sa.Column("preset_id", sa.Integer(), nullable=True),
        sa.Column("preset_name", sa.String(), nullable=False),
        sa.Column("preset_version", sa.Integer(), nullable=False),
        sa.Column("instruction", sa.Text(), nullable=False),
        sa.Column("collection", sa.String(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("rerank_status", sa.String(), nullable=False),
        sa.Column("reranker", sa.String(), nullable=True),
        sa.Column("timings_ms", sa.JSON(), nullable=False),
        sa.CheckConstraint("status IN ('ok', 'no_answer', 'error')", name=op.f("ck_ranking_logs_status")),
        sa.ForeignKeyConstraint(
            ["preset_id"],
            ["presets.id"],
            name=op.f("fk_ranking_logs_preset_id_presets"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ranking_logs")),
    )
    op.create_index(op.f("ix_ranking_logs_created_at"), "ranking_logs", ["created_at"], unique=False)
    op.create_index(op.f("ix_ranking_logs_channel"), "ranking_logs", ["channel"], unique=False)

    op.create_table(
        "ranked_candidates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ranking_id", sa.Integer(), nullable=False),
        sa.Column("point_id", sa.String(), nullable=False),
        sa.Column("doc_id", sa.String(), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("section", sa.String(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("retrieval_rank", sa.Integer(), nullable=False),
        sa.Column("retrieval_score", sa.Float(), nullable=False),
        sa.Column("rerank_rank", sa.Integer(), nullable=True),
        sa.Column("rerank_score", sa.Float(), nullable=True),
        sa.Column("used", sa.Boolean(), nullable=False),
        sa.Column("citation", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["ranking_id"],
            ["ranking_logs.id"],
            name=op.f("fk_ranked_candidates_ranking_id_ranking_logs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ranked_candidates")),
    )
    op.create_index(op.f("ix_ranked_candidates_ranking_id"), "ranked_candidates", ["ranking_id"], unique=False)

    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ranking_id", sa.Integer(), nullable=False),
        sa.Column("user", sa.String(), nullable=True),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("value IN (-1, 1)", name=op.f("ck_feedback_value")),
        sa.ForeignKeyConstraint(
            ["ranking_id"],
            ["ranking_logs.id"],
            name=op.f("fk_feedback_ranking_id_ranking_logs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
    )
    op.create_index(op.f("ix_feedback_ranking_id"), "feedback", ["ranking_id"], unique=False)

    op.bulk_insert(
        presets,
        [
            {
                "team": "default",
                "name": "default",
                "instruction": DEFAULT_INSTRUCTION,
                "candidates_k": 20,
                "top_n": 3,
                "min_score": 0.0,
                "collection": None,
                "version": 1,
            }
        ],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_feedback_ranking_id"), table_name="feedback")
    op.drop_table("feedback")
    op.drop_index(op.f("ix_ranked_candidates_ranking_id"), table_name="ranked_candidates")
    op.drop_table("ranked_candidates")
    op.drop_index(op.f("ix_ranking_logs_channel"), table_name="ranking_logs")
    op.drop_index(op.f("ix_ranking_logs_created_at"), table_name="ranking_logs")
    op.drop_table("ranking_logs")
    op.drop_table("channel_bindings")
    op.drop_table("presets")
