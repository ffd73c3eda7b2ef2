"""Teams as rows: the migration fills them from the team names already in use, and a rename carries presets and
people along (ON UPDATE CASCADE), so both keep referring to one team."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

import store
from store.db import alembic_config


def test_the_migration_makes_rows_of_the_teams_in_use(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'teams.db'}"
    engine = store.make_engine(url)
    command.upgrade(alembic_config(url), "0010")
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO presets (name, team, instruction) VALUES ('faq', 'sales', 'i')"))
        connection.execute(
            text("INSERT INTO users (name, password_hash, role, team) VALUES ('sam', 'h', 'team_admin', 'legal')")
        )
    command.upgrade(alembic_config(url), "0011")
    sessions = store.session_factory(engine)
    with sessions() as session:
        assert store.team_names(session) == ["default", "legal", "sales"]
    # The foreign key holds: a raw write naming no team is refused.
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("INSERT INTO presets (name, team, instruction) VALUES ('x', 'nowhere', 'i')"))

    with sessions.begin() as session:
        store.rename_team(session, "sales", "revenue")
    with sessions() as session:
        assert session.scalar(select(store.Preset.team).where(store.Preset.name == "faq")) == "revenue"
        teams = store.list_teams(session)
        assert [(t.name, t.people, t.presets) for t in teams] == [
            ("default", 0, 1),
            ("legal", 1, 0),
            ("revenue", 0, 1),
        ]
        with pytest.raises(store.TeamExistsError):
            store.rename_team(session, "revenue", "legal")
        with pytest.raises(LookupError):
            store.rename_team(session, "nowhere", "x")

    command.downgrade(alembic_config(url), "0010")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT team FROM presets WHERE name = 'faq'")).scalar() == "revenue"
    engine.dispose()
