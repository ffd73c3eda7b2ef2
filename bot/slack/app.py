"""Wires the Bolt app: Web API client (base URL, 429 retries), middleware, listeners."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import App, BoltResponse
from slack_bolt.error import BoltError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from sqlalchemy.orm import Session, sessionmaker

import store
from bot.answering import AnswerService
from bot.slack.escalation import Escalations
from bot.slack.listeners import SlackListeners
from bot.slack.metrics import BotMetrics
from bot.slack.worker import AnswerWorkers

log = logging.getLogger(__name__)


class SlackConfigError(ValueError):
    """Slack settings are missing or inconsistent."""


def web_client(token: str, base_url: str) -> WebClient:
    """A Web API client that waits out 429s (`Retry-After`) and retries dropped connections."""
    if not base_url.endswith("/"):
        base_url += "/"
    return WebClient(
        token=token,
        base_url=base_url,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2), RateLimitErrorRetryHandler(max_retry_count=3)],
    )


def ignore_bot_messages(body: dict[str, Any], next: Any) -> BoltResponse | None:
    """Other bots' messages (and our own, which Bolt also drops) get a 200 and nothing else."""
    event = body.get("event")
    if not isinstance(event, dict):
        return next()
    if event.get("bot_id") or event.get("subtype") == "bot_message" or event.get("bot_profile"):
        return BoltResponse(status=200, body="")
    return next()


def refuse_unreadable(error: Exception, response: BoltResponse | None) -> BoltResponse | None:
    """Bolt's middleware and matchers read Slack's payload shapes as given (`actions[0]`, `view["type"]`); a
    signed payload of another shape gets a 400 and a warning instead of Bolt's 500. A listener that fails after
    its ack (`response` is None: Slack has its 200) is a bug of ours and is logged with its traceback."""
    if response is None:
        log.error("A Slack listener failed after its ack", exc_info=error)
        return None
    log.warning("Refused a Slack request its handlers could not read: %s: %s", type(error).__name__, error)
    return BoltResponse(status=400, body="")


def build_slack_app(
    *,
    bot_token: str | None,
    signing_secret: str | None,
    api_url: str,
    slash_command: str,
    answers: AnswerService,
    sessions: sessionmaker[Session],
    workers: int,
    metrics: BotMetrics,
    lease_s: float = 30.0,
    allow_external: bool = False,
    history_tokens: int = 2000,
) -> tuple[App, AnswerWorkers]:
    """The Bolt app with its listeners, and the workers that answer its durable jobs (not started: they start
    with the first question, or at once with `AnswerWorkers.start()` to resume what earlier processes left)."""
    if not bot_token:
        raise SlackConfigError(
            "SLACK_BOT_TOKEN is not set: create the Slack app from slack-app-manifest.yml, install it, and copy "
            "the Bot User OAuth Token (xoxb-...) into SLACK_BOT_TOKEN."
        )
    try:
        app = _bolt_app(bot_token, signing_secret, api_url)
    except (SlackApiError, BoltError, OSError) as exc:  # Bolt checks the token with auth.test right away
        raise SlackConfigError(
            f"Slack did not accept SLACK_BOT_TOKEN ({api_url}auth.test: {exc}). Check the token (xoxb-...), "
            "that the app is installed to the workspace, and SLACK_API_URL."
        ) from exc
    app.middleware(ignore_bot_messages)
    app.error(refuse_unreadable)
    listeners: SlackListeners
    pool = AnswerWorkers(
        sessions, lambda job: listeners.answer_job(job), lambda job: listeners.give_up(job), workers, lease_s=lease_s
    )
    listeners = SlackListeners(
        answers, sessions, app.client, pool, metrics, allow_external=allow_external, history_tokens=history_tokens
    )
    metrics.watch(lambda: _open_jobs(sessions), lambda: pool.busy)
    listeners.register(app, slash_command)
    Escalations(sessions).register(app)  # "Still need help?"
    return app, pool


def _open_jobs(sessions: sessionmaker[Session]) -> float:
    try:
        with sessions() as session:
            return store.open_jobs(session)
    except Exception:  # the database is away: the gauge says so with NaN rather than failing the scrape
        return float("nan")


def _bolt_app(bot_token: str, signing_secret: str | None, api_url: str) -> App:
    return App(
        client=web_client(bot_token, api_url),
        # Socket Mode needs no signing secret; HTTP mode refuses to start without one (bot.app.web).
        signing_secret=signing_secret or "socket-mode-only",
        request_verification_enabled=bool(signing_secret),
        # Listeners only ack, claim and enqueue; a wide executor keeps acks fast under bursts.
        listener_executor=ThreadPoolExecutor(max_workers=32, thread_name_prefix="ragbot-listener"),
        ignoring_self_events_enabled=True,
    )
