"""The web application `ragbot serve` runs (Slack's `POST /slack/events`, the admin app under `/admin` unless
`--no-admin`, `GET /healthz`), plus Socket Mode when an app token is set. Both Slack transports dispatch into the
same Bolt app, so both modes run the same handlers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from slack_bolt import App

from bot.app.components import Components
from bot.app.health import READY, readiness
from bot.app.retention import RetentionWorker, retention_for
from bot.app.sources import SourceScheduler
from bot.slack.app import SlackConfigError, build_slack_app
from bot.slack.http import add_slack_route
from bot.slack.metrics import BotMetrics
from bot.slack.worker import AnswerWorkers

if TYPE_CHECKING:
    import uvicorn

    from bot.settings import Settings

log = logging.getLogger(__name__)


def create_http_app(
    slack_app: App | None,
    admin_app: FastAPI | None = None,
    *,
    signing_secret: str | None = None,
    ready: Callable[[], dict[str, str]] | None = None,
    metrics: BotMetrics | None = None,
) -> FastAPI:
    """`/healthz` (the process is up), `/readyz` when `ready` is given (each dependency "ok" or what is wrong;
    503 unless all are ok), `/metrics` when `metrics` is given, Slack's endpoint when `slack_app` is given (HTTP
    mode; its requests are verified against `signing_secret`), the admin app under `/admin` when given."""
    if slack_app is not None and not signing_secret:
        raise SlackConfigError("Slack's HTTP endpoint needs SLACK_SIGNING_SECRET to verify its requests.")
    api = FastAPI(title="ragbot", docs_url=None, redoc_url=None, openapi_url=None)

    @api.get("/healthz")
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "slack_http": slack_app is not None, "admin": admin_app is not None})

    if ready is not None:

        @api.get("/readyz")
        def readyz() -> JSONResponse:
            checks = ready()
            ok = all(state == READY for state in checks.values())
            return JSONResponse({"status": "ok" if ok else "not ready", **checks}, status_code=200 if ok else 503)

    if metrics is not None:

        @api.get("/metrics")
        def prometheus_metrics() -> Response:
            return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    if admin_app is not None:

        @api.get("/", include_in_schema=False)
        def root() -> RedirectResponse:
            """Someone who opens the server's address gets the admin app, not a JSON 404."""
            return RedirectResponse("/admin/", status_code=307)

        api.mount("/admin", admin_app)
    if slack_app is not None and signing_secret:
        add_slack_route(api, slack_app, signing_secret)
    return api


@dataclass
class SlackService:
    http: FastAPI
    app: App | None  # None: Slack is not configured, the server runs the admin app only
    workers: AnswerWorkers | None
    socket_mode: Any | None = None  # SocketModeHandler
    grace_s: float = 25.0
    retention: RetentionWorker | None = None  # RANKING_RETENTION_DAYS: old questions purged now and every 6 h
    admin: bool = True  # the admin app is under /admin
    syncs: SourceScheduler | None = None  # SOURCE_SYNC: due sources synced in the background

    def start(self) -> None:
        """Resume what earlier processes left queued, and connect in Socket Mode when configured."""
        if self.retention is not None:
            self.retention.start()
        if self.syncs is not None:
            self.syncs.start()
        if self.workers is not None:
            self.workers.start()
        self.start_socket_mode()

    def start_socket_mode(self) -> None:
        if self.socket_mode is not None:
            self.socket_mode.connect()  # returns at once; the connection lives on its own threads

    def close(self) -> None:
        """Stop taking questions (Socket Mode disconnects first), let running answers finish within `grace_s`,
        and hand the rest back to the queue."""
        if self.socket_mode is not None:
            self.socket_mode.close()
        if self.workers is not None:
            self.workers.stop(self.grace_s)
        if self.retention is not None:
            self.retention.stop()
        if self.syncs is not None:
            self.syncs.stop()


def server_config(app: FastAPI, host: str, port: int, settings: Settings) -> uvicorn.Config:
    """uvicorn's settings for our web apps: X-Forwarded-For/-Proto are believed only from FORWARDED_ALLOW_IPS
    (uvicorn's own default trusts 127.0.0.1, so anyone on the host could pick the address the sign-in throttle
    counts); empty trusts no proxy at all."""
    import uvicorn

    trusted = settings.forwarded_allow_ips.strip()
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
    )


def slack_configured(parts: Components) -> bool:
    s = parts.settings
    return bool(s.slack_bot_token or s.slack_signing_secret or s.slack_app_token)


def build_admin(parts: Components) -> FastAPI:
    from admin import create_admin_app
    from admin.oidc import OidcConfig

    s = parts.settings
    oidc = None
    if s.oidc_issuer:
        oidc = OidcConfig.from_settings(
            s.oidc_issuer,
            s.oidc_client_id or "",
            s.oidc_client_secret.get_secret_value() if s.oidc_client_secret else "",
            allowed_domains=s.oidc_allowed_domains,
            default_role=s.oidc_default_role,
            role_claim=s.oidc_role_claim,
            role_map=s.oidc_role_map,
            provider_name=s.oidc_provider_name,
        )
    channels = None
    if s.slack_bot_token:  # the binding form offers the bot's channels by name; without a token, ids only
        from bot.slack.channels import ChannelDirectory

        channels = ChannelDirectory.for_token(s.slack_bot_token, s.slack_api_url)
    return create_admin_app(
        parts.sessions,
        lambda: parts.answers,
        secret_key=s.admin_secret_key,
        production=s.ragbot_env == "production",
        oidc=oidc,
        password_login=s.admin_password_login,
        channels=channels,
    )


def build_service(parts: Components, *, admin: bool = True) -> SlackService:
    """Everything `ragbot serve` runs: the admin app unless `admin` is False (`--no-admin`: it then runs apart,
    `ragbot admin serve`, off the public Slack port); Slack when any SLACK_* setting is present."""
    s = parts.settings
    admin_app = build_admin(parts) if admin else None
    ready = partial(readiness, parts)
    if not slack_configured(parts):
        if admin_app is None:
            raise SlackConfigError(
                "Nothing to serve: --no-admin leaves Slack alone, and Slack is not configured (SLACK_BOT_TOKEN with "
                "SLACK_SIGNING_SECRET or SLACK_APP_TOKEN). README: 'Slack'."
            )
        return SlackService(
            create_http_app(None, admin_app, ready=ready),
            None,
            None,
            retention=retention_for(parts),
            syncs=syncs_for(parts),
        )
    if not s.slack_signing_secret and not s.slack_app_token:
        raise SlackConfigError(
            "Set SLACK_SIGNING_SECRET to receive Slack's HTTP requests at /slack/events, or SLACK_APP_TOKEN "
            "(xapp-...) to connect in Socket Mode (no public URL needed). README: 'Slack'."
        )
    app, workers = build_slack_app(
        bot_token=s.slack_bot_token,
        signing_secret=s.slack_signing_secret,
        api_url=s.slack_api_url,
        slash_command=s.slack_slash_command,
        answers=parts.answers,
        sessions=parts.sessions,
        workers=s.slack_workers,
        metrics=(metrics := BotMetrics()),
        lease_s=s.answer_lease_s,
        allow_external=s.slack_allow_external,
        history_tokens=s.slack_history_tokens,
    )
    socket_mode = None
    if s.slack_app_token:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        socket_mode = SocketModeHandler(app, s.slack_app_token)
    http = create_http_app(
        app if s.slack_signing_secret else None,
        admin_app,
        signing_secret=s.slack_signing_secret,
        ready=ready,
        metrics=metrics,
    )
    return SlackService(
        http,
        app,
        workers,
        socket_mode,
        grace_s=s.shutdown_grace_s,
        admin=admin_app is not None,
        retention=retention_for(parts),
        syncs=syncs_for(parts),
    )


def syncs_for(parts: Components) -> SourceScheduler | None:
    """The background syncs SOURCE_SYNC asks for (on by default; a process with no sources only looks)."""
    return SourceScheduler(parts) if parts.settings.source_sync else None
