"""Creating admin-app users, changing their passwords, roles and teams, switching them off (the CLI and the users
page share this). A password change or a deactivation ends the user's open sessions; the last active admin cannot
be switched off or lose the role, so the app always keeps someone who can manage it."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import store
from admin.security import MAX_NAME_CHARS, MAX_PASSWORD_CHARS, hash_password

MIN_PASSWORD = 10
_NAME = re.compile(rf"^[A-Za-z0-9_.@-]{{1,{MAX_NAME_CHARS}}}$")
# Team names, as preset teams have always been written.
TEAM_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{1,63}$")


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


def check_team_name(name: str) -> str:
    """`name` stripped, when it can name a team; UserError otherwise."""
    name = name.strip()
    if not TEAM_RE.match(name):
        raise UserError(f"Invalid team name {name!r}: use 1-64 letters, digits, '-' or '_'.")
    return name


def _known_team(session: Session, team: str | None) -> str | None:
    """`team` (None when empty) when it is an existing team; UserError otherwise, naming the teams there are."""
    team = (team or "").strip() or None
    if team is not None and team not in store.team_names(session):
        known = ", ".join(store.team_names(session)) or "none"
        raise UserError(f"No team named {team!r} (teams: {known}). Create it under Teams first.")
    return team


def invite_user(
    session: Session, name: str, role: str, team: str | None, email: str | None, password: str | None
) -> store.User:
    """A user an admin adds: with a local password now, or none for someone who signs in only through single
    sign-on (their first sign-in with this email, verified by the provider, takes this row). UserError when the
    fields do not fit. Flushes."""
    name, email = name.strip(), (email or "").strip().lower() or None
    if not _NAME.match(name):
        raise UserError(f"Invalid user name {name!r}: use 1-{MAX_NAME_CHARS} letters, digits, '.', '_', '-' or '@'.")
    _check_role(role, team)
    team = _known_team(session, team)
    if email is not None and not _EMAIL.match(email):
        raise UserError(f"Invalid email {email!r}.")
    if password:
        _check_password(password)
    elif email is None:
        raise UserError("Give a password, or an email for someone who signs in through single sign-on.")
    if session.scalars(select(store.User).where(store.User.name == name)).first():
        raise UserError(f"A user named {name!r} already exists.")
    if email is not None and session.scalar(select(store.User.id).where(func.lower(store.User.email) == email)):
        raise UserError(f"A user with the email {email} already exists.")
    user = store.User(
        name=name, password_hash=hash_password(password) if password else None, role=role, team=team, email=email
    )
    session.add(user)
    session.flush()
    return user


def _check_role(role: str, team: str | None) -> None:
    if role not in (*store.USER_ROLES, store.NO_ROLE):
        raise UserError(f"Unknown role {role!r}: use one of {', '.join((*store.USER_ROLES, store.NO_ROLE))}.")
    if role == "team_admin" and not (team or "").strip():
        raise UserError("A team_admin needs a team: the team whose presets they edit.")


def _active_admins(session: Session) -> int:
    return session.scalar(select(func.count(store.User.id)).where(store.User.role == "admin", store.User.active)) or 0


def _keep_an_admin(session: Session, user: store.User) -> None:
    """UserError when `user` is the last active admin (taking their role or switching them off leaves nobody to
    manage the app)."""
    if user.role == "admin" and user.active and _active_admins(session) <= 1:
        raise UserError(f"{user.name} is the last active admin: make someone else an admin first.")


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
    """Give `user` another role (`none`: signed in, no pages) and team (None: no team; a team admin needs one);
    UserError when the pair does not fit, the team does not exist, or this would take the last active admin's
    role."""
    _check_role(role, team)
    team = _known_team(session, team)
    if role != "admin":
        _keep_an_admin(session, user)
    user.role, user.team = role, team
    session.flush()


def deactivate(session: Session, user: store.User, by_id: int | None = None) -> int:
    """Switch `user` off: they cannot sign in and their open sessions end now; returns how many ended. UserError
    when `by_id` (the admin asking) is the user, or the user is the last active admin."""
    if by_id is not None and by_id == user.id:
        raise UserError("You cannot switch yourself off: ask another admin.")
    _keep_an_admin(session, user)
    user.active = False
    session.flush()
    return store.end_user_sessions(session, user.id)


def activate(session: Session, user: store.User) -> None:
    """Let a switched-off user sign in again (with their password; no session comes back)."""
    user.active = True
    session.flush()
