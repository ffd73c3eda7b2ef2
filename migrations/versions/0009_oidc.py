"""Single sign-on (OIDC) for the admin app: users get an email and the identity provider's issuer and subject
(unique together: how a sign-in finds its user), a user who signs in only through the provider has no password, and
the role 'none' (signed in, granted nothing yet) joins the roles.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 13:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLES = "role IN ('admin', 'team_admin', 'reviewer', 'none')"
OLD_ROLES = "role IN ('admin', 'team_admin', 'reviewer')"


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email", sa.String(), nullable=True))
        batch.add_column(sa.Column("oidc_issuer", sa.String(), nullable=True))
        batch.add_column(sa.Column("oidc_subject", sa.String(), nullable=True))
        batch.alter_column("password_hash", existing_type=sa.String(), nullable=True)
        batch.drop_constraint(op.f("ck_users_role"), type_="check")
        batch.create_check_constraint("role", ROLES)
        batch.create_unique_constraint("uq_users_oidc_identity", ["oidc_issuer", "oidc_subject"])


def downgrade() -> None:
    # Users who signed in only through the provider have no password and may have no role: they cannot exist
    # before this revision.
    op.execute("DELETE FROM users WHERE password_hash IS NULL OR role = 'none'")
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("uq_users_oidc_identity", type_="unique")
        batch.drop_constraint(op.f("ck_users_role"), type_="check")
        batch.create_check_constraint("role", OLD_ROLES)
        batch.alter_column("password_hash", existing_type=sa.String(), nullable=False)
        batch.drop_column("oidc_subject")
        batch.drop_column("oidc_issuer")
        batch.drop_column("email")
