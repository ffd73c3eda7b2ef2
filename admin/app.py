"""The admin FastAPI app. Mounted at /admin by `ragbot serve`, or run alone with `ragbot admin serve`."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker
from starlette.middleware.sessions import SessionMiddleware

from admin.deps import CurrentUser, LoginRequired, csrf_protect, csrf_token
from admin.presets import RETRIEVAL_LABELS
from admin.security import LoginLimiter

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals["csrf_token"] = csrf_token
templates.env.globals["retrieval_labels"] = RETRIEVAL_LABELS


class AdminConfigError(ValueError):
    """The admin app cannot start safely with these settings."""


def render(
    request: Request, template: str, user: CurrentUser | None, status_code: int = 200, **context: Any
) -> Response:
    return templates.TemplateResponse(request, template, {"user": user, **context}, status_code=status_code)


def create_admin_app(
    sessions: sessionmaker[Session],
    pipeline: Callable[[], Any],
    *,
    secret_key: str | None,
    production: bool = False,
) -> FastAPI:
    """`pipeline` returns the answer pipeline when the playground first needs it (models load lazily)."""
    if not secret_key:
        if production:
            raise AdminConfigError(
                "ADMIN_SECRET_KEY is not set: in production the admin app refuses to start without it, since "
                "it signs the session cookies. Set it to a long random string (python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))')."
            )
        log.warning("ADMIN_SECRET_KEY is not set: using a random key, so admin sessions end when ragbot restarts.")
        secret_key = secrets.token_urlsafe(48)

    from admin.routes import auth, overview, playground, presets, rankings, users

    app = FastAPI(title="ragbot admin", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sessions = sessions
    app.state.pipeline = pipeline
    app.state.login_limiter = LoginLimiter()
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret_key,
        session_cookie="ragbot_admin",
        same_site="strict",
        https_only=production,
        max_age=12 * 3600,
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(LoginRequired)
    def login_required(request: Request, exc: LoginRequired) -> Response:
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(request.url_for("login_page").include_query_params(next=request.url.path), 303)
        return JSONResponse({"error": "Sign in first."}, status_code=401)

    @app.exception_handler(HTTPException)
    def http_error(request: Request, exc: HTTPException) -> Response:
        if "text/html" in request.headers.get("accept", ""):
            return render(request, "error.html", None, status_code=exc.status_code, message=exc.detail)
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    guarded = [Depends(csrf_protect)]
    app.include_router(auth.router, dependencies=guarded)
    for module in (overview, presets, rankings, playground, users):
        app.include_router(module.router, dependencies=guarded)
    return app
