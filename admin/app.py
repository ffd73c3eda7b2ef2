"""The admin FastAPI app. Mounted at /admin by `ragbot serve`, or run alone with `ragbot admin serve`."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session, sessionmaker
from starlette.middleware.sessions import SessionMiddleware

from admin.channels import ChannelDirectory
from admin.deps import LoginRequired, NoAccess, csrf_protect, signed_in_user
from admin.errors import AdminConfigError
from admin.middleware import FORM_LIMITS, BodyLimit, SecurityHeaders
from admin.security import MIN_SECRET_KEY_CHARS, SESSION_TTL, SignInThrottle
from admin.templating import HERE, render
from bot.answering import AnswerService

if TYPE_CHECKING:
    from admin.oidc import OidcConfig

log = logging.getLogger(__name__)
__all__ = ["AdminConfigError", "create_admin_app"]


def create_admin_app(
    sessions: sessionmaker[Session],
    answers: Callable[[], AnswerService],
    *,
    secret_key: str | None,
    production: bool = False,
    throttle: SignInThrottle | None = None,
    oidc: OidcConfig | None = None,
    password_login: bool = True,
    channels: ChannelDirectory | None = None,
) -> FastAPI:
    """`answers` returns the answer service when the playground or a comparison first needs it (models load
    lazily). `throttle` counts sign-in tries (default: SignInThrottle's back-offs over `sessions`). `oidc` adds
    single sign-on through that identity provider; `password_login` False refuses local passwords (then `oidc`
    is required, or no one could sign in). `channels` names the channels the bot is in (binding by name, names
    beside ids); None: ids only."""
    if not password_login and oidc is None:
        raise AdminConfigError(
            "ADMIN_PASSWORD_LOGIN=false turns password sign-in off, and single sign-on is not configured "
            "(OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET): no one could sign in."
        )
    if not secret_key:
        if production:
            raise AdminConfigError(
                "ADMIN_SECRET_KEY is not set: in production the admin app refuses to start without it, since "
                "it signs the session cookies. Set it to a long random string (python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))')."
            )
        log.warning("ADMIN_SECRET_KEY is not set: using a random key, so admin sessions end when ragbot restarts.")
        secret_key = secrets.token_urlsafe(48)
    elif len(secret_key) < MIN_SECRET_KEY_CHARS:
        message = (
            f"ADMIN_SECRET_KEY has {len(secret_key)} characters: it signs the session cookies, and a short key can "
            f"be guessed from one cookie. Use at least {MIN_SECRET_KEY_CHARS} random characters (python -c "
            "'import secrets; print(secrets.token_urlsafe(48))')."
        )
        if production:
            raise AdminConfigError(message + " In production the admin app refuses to start with a short key.")
        log.warning(message)

    from admin.oidc import FlowCookie, OidcProvider
    from admin.routes import audit, auth, overview, playground, presets, rankings, sources, users

    app = FastAPI(title="ragbot admin", docs_url=None, redoc_url=None, openapi_url=None, form_limits=FORM_LIMITS)
    app.state.sessions = sessions
    app.state.answers = answers
    app.state.channels = channels
    app.state.sign_in_throttle = throttle or SignInThrottle(sessions)
    app.state.password_login = password_login
    app.state.oidc = OidcProvider(oidc) if oidc is not None else None
    app.state.oidc_cookie = FlowCookie(secret_key)
    app.state.production = production
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret_key,
        session_cookie="ragbot_admin",
        same_site="strict",
        https_only=production,
        max_age=int(SESSION_TTL.total_seconds()),
    )
    # Added last, so they run first: the body is bounded before the session is read, and every response (a 413
    # included) carries the security headers.
    app.add_middleware(BodyLimit)
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(LoginRequired)
    def login_required(request: Request, exc: LoginRequired) -> Response:
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(request.url_for("login_page").include_query_params(next=request.url.path), 303)
        return JSONResponse({"error": "Sign in first."}, status_code=401)

    @app.exception_handler(NoAccess)
    def no_access(request: Request, exc: NoAccess) -> Response:
        if "text/html" in request.headers.get("accept", ""):
            return render(request, "no_access.html", exc.user, status_code=403)
        return JSONResponse({"error": "Your account has no role yet: ask an admin for access."}, status_code=403)

    @app.exception_handler(HTTPException)
    def http_error(request: Request, exc: HTTPException) -> Response:
        if "text/html" in request.headers.get("accept", ""):
            with sessions() as session:  # a signed-in user keeps the menu on an error page
                user = signed_in_user(request, session)
            return render(request, "error.html", user, status_code=exc.status_code, message=exc.detail)
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        """A malformed path or query value (an id past 2^63, say): said plainly, never a 500."""
        problems = "; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in exc.errors())
        return http_error(request, HTTPException(status_code=422, detail=f"Invalid request ({problems})."))

    guarded = [Depends(csrf_protect)]
    app.include_router(auth.router, dependencies=guarded)
    if oidc is not None:
        app.include_router(auth.sso_router, dependencies=guarded)
    for module in (overview, presets, rankings, playground, sources, users, audit):
        app.include_router(module.router, dependencies=guarded)
    return app
