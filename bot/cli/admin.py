"""`ragbot admin`: the admin web app's users (and `admin serve`, in bot.cli.serve)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.console import out

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def create_user(
    name: Annotated[str, typer.Argument(help="Sign-in name")],
    role: Annotated[str, typer.Option(help="admin, team_admin or reviewer")],
    team: Annotated[str | None, typer.Option(help="The team whose presets a team_admin edits")] = None,
) -> None:
    """Create an admin-app user (the first admin, on a fresh database); the password comes from a prompt, or
    RAGBOT_ADMIN_PASSWORD for scripts. Only a team_admin takes --team, and it must be a known team (one the Users
    page lists, or one a preset belongs to). Recorded in the audit log as "cli"."""
    import store
    from admin import audit
    from admin.users import UserError, create_user
    from bot.app import open_components

    if team is not None and role != "team_admin" and role in store.USER_ROLES:
        raise UserError(f"Only a team_admin takes --team: a {role} works across every team.")

    password = _new_password()
    with open_components() as parts, parts.sessions.begin() as session:
        if team is not None and role == "team_admin":
            _check_team(session, team)
        user = create_user(session, name, password, role, team)
        audit.record(session, "cli", audit.Action.USER_CREATE, f"user {user.name}", None, {"role": role, "team": team})
        out.print(f"Created {user.role} '{user.name}'" + (f" of team '{user.team}'" if user.team else "") + ".")


def _check_team(session: Session, team: str) -> None:
    """A team admin's team is a known team (a typo would give them nothing to edit); its row is made sure of, for a
    database whose presets name teams the teams table lacks."""
    import store
    from admin.presets import NAME_RE, preset_teams
    from admin.users import UserError

    if not NAME_RE.match(team):
        raise UserError(f"Invalid team {team!r}: use 1-64 letters, digits, '-' or '_', as preset teams do.")
    known = sorted(set(store.team_names(session)) | set(preset_teams(session)))
    if team not in known:
        raise UserError(
            f"No team {team!r}. Known teams: {', '.join(known) or 'none'}. Create the team first (Users > Teams, "
            "as an admin), or check the spelling."
        )
    store.ensure_team(session, team)


def _new_password() -> str:
    """From RAGBOT_ADMIN_PASSWORD (scripts), else a prompt asked twice."""
    from admin.users import UserError

    password = os.environ.get("RAGBOT_ADMIN_PASSWORD")
    if password is None:
        if not sys.stdin.isatty():
            raise UserError("No password: set RAGBOT_ADMIN_PASSWORD, or run this in a terminal to be asked for one.")
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


def set_password(name: Annotated[str, typer.Argument(help="Sign-in name")]) -> None:
    """Give a user a new password (a prompt, or RAGBOT_ADMIN_PASSWORD) and end every session they have open.
    Recorded in the audit log as "cli"."""
    from admin import audit
    from admin.users import set_password, user_named
    from bot.app import open_components

    password = _new_password()
    with open_components() as parts, parts.sessions.begin() as session:
        ended = set_password(session, user_named(session, name), password)
        audit.record(session, "cli", audit.Action.USER_PASSWORD, f"user {name}")
    out.print(f"New password for '{name}'; {ended} open session(s) ended.")


def deactivate(name: Annotated[str, typer.Argument(help="Sign-in name")]) -> None:
    """Switch a user off: they cannot sign in, and their open sessions end now. Recorded in the audit log."""
    from admin import audit
    from admin.users import deactivate, user_named
    from bot.app import open_components

    with open_components() as parts, parts.sessions.begin() as session:
        user = user_named(session, name)
        before = {"active": user.active}
        ended = deactivate(session, user)
        audit.record(session, "cli", audit.Action.USER_DEACTIVATE, f"user {name}", before, {"active": False})
    out.print(f"Switched off '{name}'; {ended} open session(s) ended.")
