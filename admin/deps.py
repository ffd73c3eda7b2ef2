"""Request dependencies: the database session, the signed-in user, role checks, CSRF."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from sqlalchemy.orm import Session

import store
from admin.security import new_csrf_token, same_token
from store.models import utcnow

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class LoginRequired(Exception):
    """No valid session: HTML requests go to the login page, others get 401."""


class NoAccess(Exception):
    """Signed in, but granted no role yet (a first single sign-on): the "ask an admin" page, never the app."""

    def __init__(self, user: CurrentUser) -> None:
        super().__init__(user.name)
        self.user = user


@dataclass(frozen=True)
class CurrentUser:
    id: int
    name: str
    role: str
    team: str | None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def can_edit_team(self, team: str) -> bool:
        return self.is_admin or (self.role == "team_admin" and self.team == team)


def db(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = new_csrf_token()
    return token


async def csrf_protect(request: Request) -> None:
    """Every state-changing request carries the session's CSRF token (form field or X-CSRF-Token header)."""
    if request.method in SAFE_METHODS:
        return
    given = request.headers.get("x-csrf-token")
    if given is None and "form" in (request.headers.get("content-type") or ""):
        given = (await request.form()).get("csrf_token")
    if not same_token(request.session.get("csrf"), given if isinstance(given, str) else None):
        raise HTTPException(status_code=403, detail="Missing or wrong CSRF token: reload the page and try again.")


def signed_in_user(request: Request, session: Session) -> CurrentUser | None:
    """The user of the live server-side session the cookie names, else None. The signed cookie alone signs no
    one in: its session must still exist (not signed out, expired or ended by a password change) and its user
    be active."""
    token = request.session.get("sid") if "session" in request.scope else None
    user = store.session_user(session, token, utcnow()) if isinstance(token, str) else None
    return None if user is None else CurrentUser(user.id, user.name, user.role, user.team)


def current_user(request: Request, session: Session = Depends(db)) -> CurrentUser:
    """The signed-in user (`signed_in_user`); LoginRequired without one."""
    user = signed_in_user(request, session)
    if user is None:
        raise LoginRequired()
    if user.role == store.NO_ROLE:
        raise NoAccess(user)
    return user


def require_roles(*roles: str):
    def check(user: CurrentUser = Depends(current_user)) -> CurrentUser:
        if user.role not in roles:
            raise HTTPException(status_code=403, detail="Your role does not allow this page.")
        return user

    return check


# A row id in a URL: a positive 64-bit integer, so a larger number is a 422 rather than an overflow in the driver.
RowId = Annotated[int, Path(ge=1, le=store.MAX_ROW_ID)]
