"""Sign in and out. The only page reachable without a session."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

import store
from admin.deps import db
from admin.security import new_csrf_token, verify_password
from admin.templating import render

router = APIRouter()


def _safe_next(target: str | None, request: Request) -> str:
    """Only same-app paths: a login link must not bounce users to another site."""
    root = str(request.url_for("overview_page").path)
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return root


@router.get("/login", name="login_page")
def login_page(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", None, next=next or "", error=None)


@router.post("/login")
def login(
    request: Request,
    name: str = Form(...),
    password: str = Form(...),
    next: str | None = Form(None),
    session: Session = Depends(db),
) -> Response:
    limiter = request.app.state.login_limiter
    client = request.client.host if request.client else "unknown"
    keys = (f"name:{name.lower()}", f"ip:{client}")
    wait = limiter.retry_after(*keys)
    if wait:
        return render(
            request,
            "login.html",
            None,
            status_code=429,
            next=next or "",
            error=f"Too many failed sign-ins. Try again in {wait} seconds.",
        )
    user = session.scalars(select(store.User).where(store.User.name == name)).first()
    if not verify_password(user.password_hash if user else None, password):
        limiter.failed(*keys)
        return render(request, "login.html", None, status_code=401, next=next or "", error="Wrong name or password.")
    limiter.succeeded(keys[0])
    request.session.clear()  # a fresh session (and CSRF token) on every sign-in
    request.session.update(user_id=user.id, csrf=new_csrf_token())
    return RedirectResponse(_safe_next(next, request), status_code=303)


@router.post("/logout")
def logout(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse(request.url_for("login_page"), status_code=303)
