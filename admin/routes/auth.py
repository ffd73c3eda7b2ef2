"""Sign in and out: local passwords (unless ADMIN_PASSWORD_LOGIN=false) and single sign-on through an OpenID
Connect provider when one is configured. The only pages reachable without a session."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import store
from admin.deps import db
from admin.oidc import FLOW_COOKIE, FLOW_TTL_S, FlowCookie, OidcError, OidcProvider, sso_user
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
# Single sign-on's two open routes, included only when a provider is configured.
sso_router = APIRouter()
# A longer `next` is dropped rather than echoed back into the form.
MAX_NEXT_CHARS = 2048


def _safe_next(target: str | None, request: Request) -> str:
    """Only same-app paths: a login link must not bounce users to another site."""
    root = str(request.url_for("overview_page").path)
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return root


def _login_form(request: Request, next: str, status_code: int, error: str | None) -> Response:
    provider: OidcProvider | None = request.app.state.oidc
    return render(
        request,
        "login.html",
        None,
        status_code=status_code,
        next=next if len(next) <= MAX_NEXT_CHARS else "",
        error=error,
        max_name=MAX_NAME_CHARS,
        max_password=MAX_PASSWORD_CHARS,
        password_login=request.app.state.password_login,
        sso_label=provider.config.label if provider else None,
    )


def _start_session(request: Request, session: Session, user_id: int) -> None:
    """A fresh server-side session (and CSRF token) for `user_id`, the old one ended: no fixation. Commits."""
    now = utcnow()
    old = request.session.get("sid")
    if isinstance(old, str):
        store.end_admin_session(session, old)
    token = new_session_token()
    store.start_admin_session(session, user_id, token, now + SESSION_TTL, now)
    session.commit()
    request.session.clear()
    request.session.update(sid=token, csrf=new_csrf_token())


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
    if not request.app.state.password_login:
        return _login_form(request, next, 403, "Password sign-in is turned off here: use single sign-on.")
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
    _start_session(request, session, user.id)
    return RedirectResponse(_safe_next(next, request), status_code=303)


def _provider(request: Request) -> OidcProvider:
    provider: OidcProvider = request.app.state.oidc  # set whenever sso_router is included
    return provider


def _callback_url(request: Request) -> str:
    """The redirect URL registered at the provider: this app's public URL when FORWARDED_ALLOW_IPS trusts the
    proxy (scheme and host as the browser sees them, under the /admin mount)."""
    return str(request.url_for("oidc_callback"))


def _flow_cookie_kwargs(request: Request) -> dict[str, object]:
    return {"path": request.url_for("oidc_callback").path, "secure": request.app.state.production, "httponly": True}


@sso_router.get("/login/oidc", name="oidc_login")
def oidc_login(request: Request, next: str = "") -> Response:
    """Send the browser to the provider, with a fresh state, nonce and PKCE challenge; their secrets go to the
    callback in a signed cookie that lives FLOW_TTL_S."""
    provider = _provider(request)
    try:
        url, flow = provider.begin(_callback_url(request))
    except OidcError as exc:
        return _login_form(request, next, exc.status_code, str(exc))
    cookie: FlowCookie = request.app.state.oidc_cookie
    flow["next"] = next if len(next) <= MAX_NEXT_CHARS else ""
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        FLOW_COOKIE, cookie.dump(flow), max_age=FLOW_TTL_S, samesite="lax", **_flow_cookie_kwargs(request)
    )
    return response


@sso_router.get("/auth/oidc/callback", name="oidc_callback")
def oidc_callback(
    request: Request,
    state: str = "",
    code: str = "",
    error: str = "",
    error_description: str = "",
    session: Session = Depends(db),
) -> Response:
    """The provider's redirect back: the state must be the one this browser's cookie carries (spent now), the
    code is exchanged with the PKCE verifier, the ID token verified, and the user found or created. Any failure
    is the sign-in page with the reason, and no session."""
    provider = _provider(request)
    cookie: FlowCookie = request.app.state.oidc_cookie
    try:
        flow = cookie.load(request.cookies.get(FLOW_COOKIE), state)
        if error:
            raise OidcError(f"The identity provider did not sign you in: {error_description or error}.")
        if not code:
            raise OidcError("The identity provider sent no sign-in code: start again from the sign-in page.")
        claims = provider.finish(flow, code, _callback_url(request))
        try:
            user_id = sso_user(session, claims, provider.config).id
        except IntegrityError:  # the same person's first sign-in in another tab created them a moment ago
            raise OidcError("You signed in twice at the same moment: start again from the sign-in page.") from None
    except OidcError as exc:
        session.rollback()
        response = _login_form(request, "", exc.status_code, str(exc))
    else:
        _start_session(request, session, user_id)
        # A page, not a redirect: the session cookie is SameSite=Strict, and browsers withhold it for the rest of
        # a redirect chain that began at another site; the page's own navigation is same-site.
        response = render(request, "signed_in.html", None, target=_safe_next(flow.get("next"), request))
    response.delete_cookie(FLOW_COOKIE, samesite="lax", **_flow_cookie_kwargs(request))
    return response


@router.post("/logout")
def logout(request: Request, session: Session = Depends(db)) -> Response:
    """Ends the server-side session, so the old cookie signs no one in again."""
    token = request.session.get("sid")
    if isinstance(token, str):
        store.end_admin_session(session, token)
        session.commit()
    request.session.clear()
    return RedirectResponse(request.url_for("login_page"), status_code=303)
