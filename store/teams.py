"""Teams: the rows presets and people belong to.

Presets and users name their team by a foreign key to `teams.name`, so a team must exist before anything names it.
Rather than trust every writer (the CLI, the preset form, single sign-on's role map, tests' fixtures) to create it
first, a `before_flush` hook inserts the missing team rows of the presets and users about to be written; the
explicit `ensure_team` is for callers that want the team without writing a preset or user.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store.models import Preset, Team, User, utcnow


class TeamExistsError(ValueError):
    """A team of that name exists already."""


@dataclass(frozen=True)
class TeamSummary:
    """A team with how many people and presets belong to it."""

    id: int
    name: str
    people: int
    presets: int


def _insert_teams(session: Session, names: Iterable[str]) -> None:
    rows = [{"name": name, "created_at": utcnow()} for name in sorted(set(names))]
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        statement = postgresql.insert(Team).values(rows).on_conflict_do_nothing(index_elements=["name"])
    elif dialect == "sqlite":
        statement = sqlite.insert(Team).values(rows).on_conflict_do_nothing(index_elements=["name"])
    else:  # pragma: no cover - ragbot runs on SQLite and PostgreSQL
        raise NotImplementedError(f"Teams do not support the {dialect} database.")
    session.connection().execute(statement)


def ensure_team(session: Session, name: str) -> None:
    """Make sure the team `name` exists (a no-op when it does, also against a concurrent insert)."""
    _insert_teams(session, [name])


def team_names(session: Session) -> list[str]:
    """Every team's name, sorted."""
    return list(session.scalars(select(Team.name).order_by(Team.name)))


def list_teams(session: Session) -> list[TeamSummary]:
    """Every team with its people and presets counts, sorted by name."""
    people = dict(session.execute(select(User.team, func.count(User.id)).group_by(User.team)).all())
    presets = dict(session.execute(select(Preset.team, func.count(Preset.id)).group_by(Preset.team)).all())
    teams = session.execute(select(Team.id, Team.name).order_by(Team.name)).all()
    return [TeamSummary(id_, name, people.get(name, 0), presets.get(name, 0)) for id_, name in teams]


def create_team(session: Session, name: str) -> Team:
    """A new team; TeamExistsError when the name is taken. Flushes."""
    if session.scalar(select(Team.id).where(Team.name == name)) is not None:
        raise TeamExistsError(f"A team named {name!r} exists already.")
    team = Team(name=name)
    session.add(team)
    session.flush()
    return team


def rename_team(session: Session, old: str, new: str) -> None:
    """Rename team `old` to `new`: its presets and people follow (ON UPDATE CASCADE). LookupError when there is no
    `old`, TeamExistsError when `new` is taken. Expires the session's objects, whose team names are stale."""
    if session.scalar(select(Team.id).where(Team.name == old)) is None:
        raise LookupError(f"No team named {old!r}.")
    if session.scalar(select(Team.id).where(Team.name == new)) is not None:
        raise TeamExistsError(f"A team named {new!r} exists already.")
    session.flush()
    session.execute(update(Team).where(Team.name == old).values(name=new).execution_options(synchronize_session=False))
    session.expire_all()


@event.listens_for(Session, "before_flush")
def _create_named_teams(session: Session, _context: Any, _instances: Any) -> None:
    """Insert the teams that new or changed presets and users name and that do not exist yet."""
    names = {
        obj.team
        for obj in (*session.new, *session.dirty)
        if isinstance(obj, (Preset, User)) and isinstance(obj.team, str) and obj.team
    }
    if names:
        _insert_teams(session, names)
