"""Creating admin-app users, changing their passwords, switching them off (the CLI and the users page share
this). A password change or a deactivation ends the user's open sessions."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

import store
from admin.security import MAX_NAME_CHARS, MAX_PASSWORD_CHARS, hash_password

MIN_PASSWORD = 10
_NAME = re.compile(rf"^[A-Za-z0-9_.@-]{{1,{MAX_NAME_CHARS}}}$")


class UserError(ValueError):
    """A user cannot be created as asked; the message says why."""


def create_user(session: Session, name: str, password: str, role: str, team: str | None = None) -> store.User:
    if not _NAME.match(name):
        raise UserError(f"Invalid user name {name!r}: use 1-{MAX_NAME_CHARS} letters, digits, '.', '_', '-' or '@'.")
    if role not in store.USER_ROLES:
        raise UserError(f"Unknown role {role!r}: use one of {', '.join(store.USER_ROLES)}.")
    if role == "team_admin" and not team:
        raise UserError("A team_admin needs --team: the team whose presets they edit.")
    _check_password(password)
    if session.scalars(select(store.User).where(store.User.name == name)).first():
        raise UserError(f"A user named {name!r} already exists.")
    user = store.User(name=name, password_hash=hash_password(password), role=role, team=team)
    session.add(user)
    session.flush()
    return user


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"The password is too short: use at least {MIN_PASSWORD} characters.")
    if len(password) > MAX_PASSWORD_CHARS:
        raise UserError(f"The password is too long: use at most {MAX_PASSWORD_CHARS} characters.")


def user_named(session: Session, name: str) -> store.User:
    """The user called `name`; UserError when there is none."""
    user = session.scalars(select(store.User).where(store.User.name == name)).first()
    if user is None:
        raise UserError(f"No user named {name!r}.")
    return user


def set_password(session: Session, user: store.User, password: str) -> int:
    """Give `user` a new password and end every session they have open (whoever held the old password is out);
    returns how many sessions ended."""
    _check_password(password)
    user.password_hash = hash_password(password)
    session.flush()
    return store.end_user_sessions(session, user.id)


def set_role(session: Session, user: store.User, role: str, team: str | None) -> None:
    """Give `user` another role (`none`: signed in, no pages), with a team only for a team admin; UserError when
    the pair does not fit."""
    team = (team or "").strip() or None
    if role not in (*store.USER_ROLES, store.NO_ROLE):
        raise UserError(f"Unknown role {role!r}: use one of {', '.join((*store.USER_ROLES, store.NO_ROLE))}.")
    if role == "team_admin" and not team:
        raise UserError("A team_admin needs a team: the team whose presets they edit.")
    user.role, user.team = role, team if role == "team_admin" else None
    session.flush()


def deactivate(session: Session, user: store.User) -> int:
    """Switch `user` off: they cannot sign in and their open sessions end now; returns how many ended."""
    user.active = False
    session.flush()
    return store.end_user_sessions(session, user.id)


def activate(session: Session, user: store.User) -> None:
    """Let a switched-off user sign in again (with their password; no session comes back)."""
    user.active = True
    session.flush()
