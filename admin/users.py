"""Creating admin-app users (the CLI and the users page share this)."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

import store
from admin.security import hash_password

MIN_PASSWORD = 10
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


class UserError(ValueError):
    """A user cannot be created as asked; the message says why."""


def create_user(session: Session, name: str, password: str, role: str, team: str | None = None) -> store.User:
    if not _NAME.match(name):
        raise UserError(f"Invalid user name {name!r}: use 1-64 letters, digits, '.', '_', '-' or '@'.")
    if role not in store.USER_ROLES:
        raise UserError(f"Unknown role {role!r}: use one of {', '.join(store.USER_ROLES)}.")
    if role == "team_admin" and not team:
        raise UserError("A team_admin needs --team: the team whose presets they edit.")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"The password is too short: use at least {MIN_PASSWORD} characters.")
    if session.scalars(select(store.User).where(store.User.name == name)).first():
        raise UserError(f"A user named {name!r} already exists.")
    user = store.User(name=name, password_hash=hash_password(password), role=role, team=team)
    session.add(user)
    session.flush()
    return user
