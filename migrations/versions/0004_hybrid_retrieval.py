"""Hybrid retrieval: a retrieval mode per preset (and its versions), the mode each ranking ran with, and each
candidate's rank and score in the dense and lexical channels.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 03:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("presets") as batch:
        batch.add_column(sa.Column("retrieval_mode", sa.String(), server_default="hybrid", nullable=False))
        batch.create_check_constraint(op.f("ck_presets_retrieval_mode"), "retrieval_mode IN ('dense', 'lexical', 'hybrid')")
    with op.batch_alter_table("preset_versions") as batch:
        batch.add_column(sa.Column("retrieval_mode", sa.String(), server_default="hybrid", nullable=False))
    with op.batch_alter_table("ranking_logs") as batch:
        batch.add_column(sa.Column("retrieval_mode", sa.String(), nullable=True))
    with op.batch_alter_table("ranked_candidates") as batch:
        batch.add_column(sa.Column("dense_rank", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("dense_score", sa.Float(), nullable=True))
        batch.add_column(sa.Column("lexical_rank", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("lexical_score", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ranked_candidates") as batch:
        for column in ("lexical_score", "lexical_rank", "dense_score", "dense_rank"):
            batch.drop_column(column)
    with op.batch_alter_table("ranking_logs") as batch:
        batch.drop_column("retrieval_mode")
    with op.batch_alter_table("preset_versions") as batch:
        batch.drop_column("retrieval_mode")
    with op.batch_alter_table("presets") as batch:
        batch.drop_constraint(op.f("ck_presets_retrieval_mode"), type_="check")
        batch.drop_column("retrieval_mode")
