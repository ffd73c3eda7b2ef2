"""Sign in and out. The only page reachable without a session."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

import store
from admin.deps import db
from admin.security import (
    MAX_NAME_CHARS,
    MAX_PASSWORD_CHARS,
    SESSION_TTL,
    SignInThrottle,
    new_csrf_token,
    new_session_token,
    verify_password,
)
from admin.templating import render
from store.models import utcnow

router = APIRouter()
# A longer `next` is dropped rather than echoed back into the form.
MAX_NEXT_CHARS = 2048


def _safe_next(target: str | None, request: Request) -> str:
    """Only same-app paths: a login link must not bounce users to another site."""
    root = str(request.url_for("overview_page").path)
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return root


def _login_form(request: Request, next: str, status_code: int, error: str | None) -> Response:
    return render(
        request,
        "login.html",
        None,
        status_code=status_code,
        next=next if len(next) <= MAX_NEXT_CHARS else "",
        error=error,
        max_name=MAX_NAME_CHARS,
        max_password=MAX_PASSWORD_CHARS,
    )


@router.get("/login", name="login_page")
def login_page(request: Request, next: str = "") -> Response:
    return _login_form(request, next, 200, None)


@router.post("/login")
def login(
    request: Request,
    name: str = Form(""),
    password: str = Form(""),
    next: str = Form(""),
    session: Session = Depends(db),
) -> Response:
    """Bounds first, then one try counted on the shared throttle, then the password; a fresh server-side
    session (and CSRF token) on every sign-in."""
    if not name or not password or len(name) > MAX_NAME_CHARS or len(password) > MAX_PASSWORD_CHARS:
        return _login_form(
            request,
            next,
            400,
            f"Enter a name of at most {MAX_NAME_CHARS} characters and a password of at most {MAX_PASSWORD_CHARS}.",
        )
    throttle: SignInThrottle = request.app.state.sign_in_throttle
    address = request.client.host if request.client else "unknown"
    wait = throttle.attempt(name, address)
    if wait:
        response = _login_form(request, next, 429, f"Too many failed sign-ins. Try again in {wait} seconds.")
        response.headers["Retry-After"] = str(wait)
        return response
    user = session.scalars(select(store.User).where(store.User.name == name)).first()
    if user is not None and not user.active:
        user = None  # switched off: refused like a wrong password, after the same hashing work
    if not verify_password(user.password_hash if user else None, password):
        return _login_form(request, next, 401, "Wrong name or password.")
    throttle.succeeded(name, address)
    now = utcnow()
    old = request.session.get("sid")
    if isinstance(old, str):
        store.end_admin_session(session, old)
    token = new_session_token()
    store.start_admin_session(session, user.id, token, now + SESSION_TTL, now)
    session.commit()
    request.session.clear()  # a fresh session (and CSRF token) on every sign-in: no fixation
    request.session.update(sid=token, csrf=new_csrf_token())
    return RedirectResponse(_safe_next(next, request), status_code=303)


@router.post("/logout")
def logout(request: Request, session: Session = Depends(db)) -> Response:
    """Ends the server-side session, so the old cookie signs no one in again."""
    token = request.session.get("sid")
    if isinstance(token, str):
        store.end_admin_session(session, token)
        session.commit()
    request.session.clear()
    return RedirectResponse(request.url_for("login_page"), status_code=303)
