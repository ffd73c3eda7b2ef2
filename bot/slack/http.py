"""The `/slack/events` HTTP adapter: Starlette request -> Bolt request -> dispatch -> Starlette response."""

from __future__ import annotations

from fastapi import FastAPI, Request
from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response


def add_slack_route(api: FastAPI, slack_app: App, path: str = "/slack/events") -> None:
    """Route Slack's events, actions, views and commands at `path` into `slack_app`."""

    @api.post(path)
    async def slack_events(request: Request) -> Response:
        body = await request.body()
        # Bolt's dispatch is synchronous (it returns once a listener acks): keep it off the event loop.
        bolt_response = await run_in_threadpool(slack_app.dispatch, to_bolt_request(request, body))
        return to_starlette_response(bolt_response)
