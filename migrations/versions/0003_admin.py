"""Admin app: users, preset versions (every change a new row), reviewers' candidate labels.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("team", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("role IN ('admin', 'team_admin', 'reviewer')", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    op.create_table(
        "preset_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("preset_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("instruction", sa.Text(), nullable=False),
        sa.Column("candidates_k", sa.Integer(), nullable=False),
        sa.Column("top_n", sa.Integer(), nullable=False),
        sa.Column("min_score", sa.Float(), nullable=False),
        sa.Column("collection", sa.String(), nullable=True),
        sa.Column("author", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["preset_id"], ["presets.id"], name=op.f("fk_preset_versions_preset_id_presets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_preset_versions")),
        sa.UniqueConstraint("preset_id", "version", name="uq_preset_versions_preset_id_version"),
    )
    op.create_index(op.f("ix_preset_versions_preset_id"), "preset_versions", ["preset_id"])
    # Every existing preset gets its current state as its first recorded version.
    op.execute(
        "INSERT INTO preset_versions (preset_id, version, instruction, candidates_k, top_n, min_score, collection, "
        "author) SELECT id, version, instruction, candidates_k, top_n, min_score, collection, NULL FROM presets"
    )
    op.create_table(
        "candidate_labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("ranking_id", sa.Integer(), nullable=False),
        sa.Column("reviewer", sa.String(), nullable=False),
        sa.Column("relevant", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["candidate_id"],
            ["ranked_candidates.id"],
            name=op.f("fk_candidate_labels_candidate_id_ranked_candidates"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ranking_id"], ["ranking_logs.id"], name=op.f("fk_candidate_labels_ranking_id_ranking_logs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_candidate_labels")),
        sa.UniqueConstraint("candidate_id", "reviewer", name="uq_candidate_labels_candidate_id_reviewer"),
    )
    op.create_index(op.f("ix_candidate_labels_candidate_id"), "candidate_labels", ["candidate_id"])
    op.create_index(op.f("ix_candidate_labels_ranking_id"), "candidate_labels", ["ranking_id"])


def downgrade() -> None:
    op.drop_table("candidate_labels")
    op.drop_table("preset_versions")
    op.drop_table("users")
