"""Knowledge sources synced on a schedule: the sources, each sync's history, the documents each source holds as of
its last sync (for conditional fetches and pruning), and presets' source and tag filters (versioned).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 12:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SOURCE_KINDS = "kind IN ('folder', 'web', 'confluence', 'notion', 'zendesk', 'github')"
SYNC_STATUSES = "status IN ('running', 'ok', 'failed', 'interrupted')"


def upgrade() -> None:
    for table in ("presets", "preset_versions"):  # versions record the filters like the other ranking fields
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("source_filter", sa.JSON(), nullable=True))
            batch.add_column(sa.Column("tag_filter", sa.JSON(), nullable=True))
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("collection", sa.String(), nullable=False),
        sa.Column("every_s", sa.Integer(), nullable=True),
        sa.Column("token_env", sa.String(), nullable=True),
        sa.Column("lock_owner", sa.String(), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sync_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(SOURCE_KINDS, name=op.f("ck_sources_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sources")),
        sa.UniqueConstraint("name", name=op.f("uq_sources_name")),
    )
    op.create_table(
        "source_syncs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(), server_default="running", nullable=False),
        sa.Column("added", sa.Integer(), server_default="0", nullable=False),
        sa.Column("changed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("removed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("unchanged", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(SYNC_STATUSES, name=op.f("ck_source_syncs_status")),
        sa.ForeignKeyConstraint(
            ["source_id"], ["sources.id"], name=op.f("fk_source_syncs_source_id_sources"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source_syncs")),
    )
    op.create_index(op.f("ix_source_syncs_source_id"), "source_syncs", ["source_id"])
    op.create_table(
        "source_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("url", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("title", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("version", sa.String(), server_default=sa.text("''"), nullable=False),
        sa.Column("etag", sa.String(), server_default=sa.text("''"), nullable=False),
        sa.Column("last_modified", sa.String(), server_default=sa.text("''"), nullable=False),
        sa.Column("content_hash", sa.String(), server_default=sa.text("''"), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"], ["sources.id"], name=op.f("fk_source_documents_source_id_sources"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source_documents")),
        sa.UniqueConstraint("source_id", "key", name=op.f("uq_source_documents_source_key")),
    )
    op.create_index(op.f("ix_source_documents_source_id"), "source_documents", ["source_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_source_documents_source_id"), table_name="source_documents")
    op.drop_table("source_documents")
    op.drop_index(op.f("ix_source_syncs_source_id"), table_name="source_syncs")
    op.drop_table("source_syncs")
    op.drop_table("sources")
    for table in ("preset_versions", "presets"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("tag_filter")
            batch.drop_column("source_filter")
