"""Teams become rows: a `teams` table, filled from the team names presets and users already carry (and
"default"), and presets.team and users.team become foreign keys to teams.name (a rename follows through ON UPDATE
CASCADE), so that presets and people refer to one team.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 13:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams")),
        sa.UniqueConstraint("name", name=op.f("uq_teams_name")),
    )
    op.execute(
        "INSERT INTO teams (name) SELECT DISTINCT team FROM ("
        " SELECT team FROM presets UNION SELECT team FROM users UNION SELECT 'default' AS team"
        ") AS known WHERE team IS NOT NULL"
    )
    for table in ("presets", "users"):
        with op.batch_alter_table(table) as batch:
            batch.create_foreign_key(op.f(f"fk_{table}_team_teams"), "teams", ["team"], ["name"], onupdate="CASCADE")


def downgrade() -> None:
    for table in ("users", "presets"):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(op.f(f"fk_{table}_team_teams"), type_="foreignkey")
    op.drop_table("teams")
