"""`ragbot serve`: the HTTP server (Slack's `POST /slack/events`, `GET /healthz`), plus Socket Mode when an app
token is set. Both adapters dispatch into the same Bolt app, so both modes run the same handlers."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from bot.components import Components
from bot.slack.app import SlackConfigError, build_slack_app
from bot.slack.worker import AnswerPool

log = logging.getLogger(__name__)


def create_http_app(slack_app: App | None) -> FastAPI:
    """The web application; `slack_app` None serves only `/healthz` (Socket Mode without a signing secret)."""
    api = FastAPI(title="ragbot", docs_url=None, redoc_url=None, openapi_url=None)

    @api.get("/healthz")
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "slack_http": slack_app is not None})

    if slack_app is not None:

        @api.post("/slack/events")
        async def slack_events(request: Request) -> Response:
            body = await request.body()
            # Bolt's dispatch is synchronous (it returns once a listener acks): keep it off the event loop.
            bolt_response = await run_in_threadpool(slack_app.dispatch, to_bolt_request(request, body))
            return to_starlette_response(bolt_response)

    return api


@dataclass
class SlackService:
    http: FastAPI
    app: App
    pool: AnswerPool
    socket_mode: Any | None = None  # SocketModeHandler

    def start_socket_mode(self) -> None:
        if self.socket_mode is not None:
            self.socket_mode.connect()  # returns at once; the connection lives on its own threads

    def close(self) -> None:
        if self.socket_mode is not None:
            self.socket_mode.close()
        self.pool.shutdown(wait=False)


def build_service(parts: Components) -> SlackService:
    s = parts.settings
    if not s.slack_signing_secret and not s.slack_app_token:
        raise SlackConfigError(
            "Set SLACK_SIGNING_SECRET to receive Slack's HTTP requests at /slack/events, or SLACK_APP_TOKEN "
            "(xapp-...) to connect in Socket Mode (no public URL needed). README: 'Slack'."
        )
    pipeline = parts.pipeline
    pool = AnswerPool(s.slack_workers)
    app = build_slack_app(
        bot_token=s.slack_bot_token,
        signing_secret=s.slack_signing_secret,
        api_url=s.slack_api_url,
        slash_command=s.slack_slash_command,
        ask=pipeline.ask,
        sessions=parts.sessions,
        pool=pool,
    )
    socket_mode = None
    if s.slack_app_token:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        socket_mode = SocketModeHandler(app, s.slack_app_token)
    return SlackService(create_http_app(app if s.slack_signing_secret else None), app, pool, socket_mode)
