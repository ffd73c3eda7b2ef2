"""`ragbot admin`: the admin web app's users (and `admin serve`, in bot.cli.serve)."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from bot.cli.console import out


def create_user(
    name: Annotated[str, typer.Argument(help="Sign-in name")],
    role: Annotated[str, typer.Option(help="admin, team_admin or reviewer")],
    team: Annotated[str | None, typer.Option(help="The team whose presets a team_admin edits")] = None,
) -> None:
    """Create an admin-app user; the password comes from a prompt, or RAGBOT_ADMIN_PASSWORD for scripts."""
    from admin.users import UserError, create_user
    from bot.app import open_components

    password = os.environ.get("RAGBOT_ADMIN_PASSWORD")
    if password is None:
        if not sys.stdin.isatty():
            raise UserError("No password: set RAGBOT_ADMIN_PASSWORD, or run this in a terminal to be asked for one.")
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with open_components() as parts, parts.sessions.begin() as session:
        user = create_user(session, name, password, role, team)
        out.print(f"Created {user.role} '{user.name}'" + (f" of team '{user.team}'" if user.team else "") + ".")
