"""Slack listeners: acknowledge at once, claim the message and queue the question as a durable job in one
transaction (exactly-once), then wake a worker. Answering never runs on a request thread."""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker

import store
from bot.answering import AnswerError, AnswerService, QuestionError
from bot.slack import blocks
from bot.slack.metrics import BotMetrics
from bot.slack.worker import AnswerWorkers, Outcome

log = logging.getLogger(__name__)
_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
WORKING_REACTION = "eyes"


def question_text(text: str) -> str:
    """The question without bot mentions."""
    return " ".join(_MENTION.sub(" ", text or "").split())


def _where(channel: str | None, ts: str | None, exc: BaseException | None = None) -> dict[str, Any]:
    """Log record fields (`LOG_FORMAT=json` prints them): the Slack message and its ranking, when known."""
    ranking_id = exc.ranking_id if isinstance(exc, AnswerError) else None
    return {"slack_channel": channel, "slack_ts": ts, "ranking_id": ranking_id}


def _told(exc: BaseException, reference: str) -> Outcome:
    """A failure the asker was told about, with the reference they got."""
    ranking_id = exc.ranking_id if isinstance(exc, AnswerError) else None
    cause = exc.__cause__ or exc
    return Outcome(False, ranking_id, f"{reference}: {type(cause).__name__}: {cause}")


def reference_for(exc: BaseException) -> str:
    """The id a user can quote: the logged ranking when there is one, else a fresh id (also in the log)."""
    ranking_id = exc.ranking_id if isinstance(exc, AnswerError) else None
    return f"R-{ranking_id}" if ranking_id else f"E-{uuid.uuid4().hex[:8]}"


class SlackListeners:
    """The handlers, registered on a Bolt `App` by `register`. A question becomes a durable job in the same
    transaction that claims its Slack message; `workers` answer the jobs (`answer_job`) with `client`."""

    def __init__(
        self,
        answers: AnswerService,
        sessions: sessionmaker[Session],
        client: WebClient,
        workers: AnswerWorkers,
        metrics: BotMetrics,
    ) -> None:
        self.answers = answers
        self.sessions = sessions
        self.client = client
        self.workers = workers
        self.metrics = metrics

    def register(self, app: App, slash_command: str) -> None:
        app.event("app_mention")(self.on_mention)
        app.event("message")(self.on_message)
        app.command(slash_command)(self.on_command)
        app.action(blocks.ACTION_HELPFUL)(self.on_helpful)
        app.action(blocks.ACTION_NOT_HELPFUL)(self.on_not_helpful)
        app.action(blocks.ACTION_SHARE)(self.on_share)
        app.view(blocks.COMMENT_MODAL)(self.on_comment)

    # -- questions ---------------------------------------------------------------------------------
    def on_mention(self, body: dict[str, Any], event: dict[str, Any], client: WebClient, ack: Ack) -> None:
        ack()
        self._take_question(body, event, client)

    def on_message(
        self, body: dict[str, Any], event: dict[str, Any], client: WebClient, context: Any, ack: Ack
    ) -> None:
        ack()
        if event.get("subtype") not in (None, "file_share", "thread_broadcast"):
            return  # edits, deletions, joins...
        is_dm = event.get("channel_type") == "im"
        mentions_bot = bool(context.bot_user_id) and f"<@{context.bot_user_id}" in (event.get("text") or "")
        if is_dm or mentions_bot:  # a channel mention also arrives as app_mention: the claim keeps one
            self._take_question(body, event, client)

    def _take_question(self, body: dict[str, Any], event: dict[str, Any], client: WebClient) -> None:
        channel, ts = event["channel"], event["ts"]
        thread_ts = event.get("thread_ts") or ts
        question = question_text(event.get("text", ""))
        try:
            with self.sessions.begin() as session:
                if not store.claim_slack_event(session, channel, ts, body.get("event_id")):
                    self.metrics.events.labels(kind="mention", outcome="duplicate").inc()
                    return  # a retry, the same mention as another event type, or another bot process got it
                if question:
                    store.enqueue_job(
                        session,
                        kind="mention",
                        question=question,
                        channel=channel,
                        ts=ts,
                        thread_ts=thread_ts,
                        user=event.get("user"),
                    )
                    position = max(0, store.open_jobs(session) - self.workers.workers)
        except Exception as exc:  # the database is down: say so rather than go quiet
            self.metrics.events.labels(kind="mention", outcome="refused").inc()
            reference = reference_for(exc)
            log.exception("Claiming %s/%s failed (reference %s)", channel, ts, reference, extra=_where(channel, ts))
            self._post_quietly(client, channel=channel, thread_ts=thread_ts, text=blocks.error_text(reference))
            return
        self.metrics.events.labels(kind="mention", outcome="queued" if question else "empty").inc()
        if not question:
            client.chat_postMessage(
                channel=channel,
                thread_ts=thread_ts,
                text="Ask me a question after the mention, e.g. “@ragbot how do I set up SAML with Okta?”",
            )
            return
        self._react(client, channel, ts, "reactions_add")
        self.workers.wake()
        user = event.get("user")
        if position and user:
            client.chat_postEphemeral(
                channel=channel,
                user=user,
                thread_ts=thread_ts,
                text=f"I'm busy answering other questions; yours is queued (number {position} in line).",
            )

    def answer_job(self, job: store.AnswerJob) -> Outcome:
        """Answer a durable job where its question was asked. Failures are told to the asker with their
        reference, never silently."""
        if job.kind == "command":
            return self._answer_command(job)
        return self._answer_in_thread(job)

    def give_up(self, job: store.AnswerJob) -> None:
        """A job its processes never finished (they died each time): tell the asker, with its reference."""
        self.metrics.answers.labels(outcome="gave_up").inc()
        text = blocks.error_text(f"J-{job.id}")
        if job.kind == "command":
            Respond(response_url=job.response_url)(response_type="ephemeral", text=text)
            return
        self._post_quietly(self.client, channel=job.channel, thread_ts=job.thread_ts, text=text)
        self._react(self.client, job.channel, job.ts, "reactions_remove")

    def _answer_in_thread(self, job: store.AnswerJob) -> Outcome:
        client, channel, ts, thread_ts = self.client, job.channel, job.ts, job.thread_ts
        try:
            context = self._thread_question(client, channel, thread_ts) if thread_ts != ts else None
            result = self.answers.ask(job.question, channel=channel, user=job.user, context=context)
            self.metrics.answered(result)
            view = blocks.AnswerView.from_result(result)
            client.chat_postMessage(
                channel=channel,
                thread_ts=thread_ts,
                text=blocks.answer_text(view),
                blocks=blocks.answer_blocks(view),
                unfurl_links=False,
            )
            return Outcome(True, result.ranking_id)
        except QuestionError as exc:
            self.metrics.answers.labels(outcome="unusable").inc()
            client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=str(exc))
            return Outcome(False, error=str(exc))
        except Exception as exc:
            self.metrics.failed(exc)
            reference = reference_for(exc)
            log.exception(
                "Answering %s/%s failed (reference %s)", channel, ts, reference, extra=_where(channel, ts, exc)
            )
            self._post_quietly(client, channel=channel, thread_ts=thread_ts, text=blocks.error_text(reference))
            return _told(exc, reference)
        finally:
            self._react(client, channel, ts, "reactions_remove")

    def _thread_question(self, client: WebClient, channel: str, thread_ts: str) -> str | None:
        """The question that started the thread, as context for a follow-up."""
        try:
            replies = client.conversations_replies(channel=channel, ts=thread_ts, limit=1)
        except Exception:
            log.warning("Could not read thread %s/%s for context", channel, thread_ts, exc_info=True)
            return None
        messages = replies.get("messages") or []
        if not messages or messages[0].get("bot_id"):
            return None
        return question_text(messages[0].get("text", "")) or None

    # -- slash command -----------------------------------------------------------------------------
    def on_command(self, command: dict[str, Any], ack: Ack) -> None:
        question = " ".join((command.get("text") or "").split())
        if not question:
            self.metrics.events.labels(kind="command", outcome="empty").inc()
            ack(text=f"Usage: {command.get('command', '/ask')} your question")
            return
        try:
            with self.sessions.begin() as session:
                store.enqueue_job(
                    session,
                    kind="command",
                    question=question,
                    channel=command.get("channel_id"),
                    user=command.get("user_id"),
                    response_url=command.get("response_url"),
                )
                position = max(0, store.open_jobs(session) - self.workers.workers)
        except Exception as exc:
            self.metrics.events.labels(kind="command", outcome="refused").inc()
            reference = reference_for(exc)
            log.exception("Queueing a slash command failed (reference %s)", reference)
            ack(response_type="ephemeral", text=blocks.error_text(reference))
            return
        self.metrics.events.labels(kind="command", outcome="queued").inc()
        self.workers.wake()
        searching = f"Searching the knowledge base for: {question}"
        if position:
            searching += f"\nI'm busy answering other questions; yours is queued (number {position} in line)."
        ack(response_type="ephemeral", text=searching)

    def _answer_command(self, job: store.AnswerJob) -> Outcome:
        respond = Respond(response_url=job.response_url)
        try:
            result = self.answers.ask(job.question, channel=job.channel, user=job.user)
            self.metrics.answered(result)
            view = blocks.AnswerView.from_result(result)
            respond(
                response_type="ephemeral",
                replace_original=True,
                text=blocks.answer_text(view),
                blocks=blocks.answer_blocks(view, actions="share"),
            )
            return Outcome(True, result.ranking_id)
        except QuestionError as exc:
            self.metrics.answers.labels(outcome="unusable").inc()
            respond(response_type="ephemeral", text=str(exc))
            return Outcome(False, error=str(exc))
        except Exception as exc:
            self.metrics.failed(exc)
            reference = reference_for(exc)
            log.exception("Answering /command failed (reference %s)", reference)
            respond(response_type="ephemeral", text=blocks.error_text(reference))
            return _told(exc, reference)

    def on_share(self, body: dict[str, Any], ack: Ack, client: WebClient, respond: Respond) -> None:
        ack()
        ranking_id = int(body["actions"][0]["value"])
        channel = body["channel"]["id"]
        with self.sessions() as session:
            ranking = session.get(store.RankingLog, ranking_id)
            view = blocks.AnswerView.from_log(ranking) if ranking else None
        if view is None:
            respond(response_type="ephemeral", replace_original=False, text="That answer is no longer available.")
            return
        user = body["user"]["id"]
        try:
            client.chat_postMessage(
                channel=channel,
                text=blocks.answer_text(view),
                blocks=blocks.shared_answer_blocks(view, user, ranking.question),
                unfurl_links=False,
            )
        except Exception as exc:
            log.warning("Sharing ranking %s in %s failed: %s", ranking_id, channel, exc)
            respond(
                response_type="ephemeral",
                replace_original=False,
                text="I couldn't post in this channel. Invite me first: /invite @ragbot",
            )
            return
        respond(delete_original=True)

    # -- feedback ----------------------------------------------------------------------------------
    def on_helpful(self, body: dict[str, Any], ack: Ack, client: WebClient) -> None:
        ack()
        self._vote(body, client, +1)

    def on_not_helpful(self, body: dict[str, Any], ack: Ack, client: WebClient) -> None:
        ack()
        feedback_id = self._vote(body, client, -1)
        if feedback_id is not None:
            client.views_open(trigger_id=body["trigger_id"], view=blocks.comment_modal(feedback_id))

    def _vote(self, body: dict[str, Any], client: WebClient, value: int) -> int | None:
        ranking_id = int(body["actions"][0]["value"])
        user = body["user"]["id"]
        with self.sessions.begin() as session:
            if store.user_feedback(session, ranking_id, user) is not None:
                return None  # a double click, or a second delivery of the same press
            feedback_id = store.add_feedback(session, ranking_id, value, user=user).id
        self.metrics.feedback.labels(vote="helpful" if value > 0 else "not_helpful").inc()
        message = body.get("message") or {}
        if message.get("ts") and body.get("channel"):
            client.chat_update(
                channel=body["channel"]["id"],
                ts=message["ts"],
                text=message.get("text", ""),
                blocks=blocks.replace_feedback_buttons(message.get("blocks") or [], user, value),
            )
        return feedback_id

    def on_comment(self, ack: Ack, view: dict[str, Any]) -> None:
        ack()
        feedback_id = int(json.loads(view.get("private_metadata") or "{}").get("feedback_id", 0))
        value = view.get("state", {}).get("values", {}).get("comment", {}).get("text", {}).get("value")
        if feedback_id and value and value.strip():
            with self.sessions.begin() as session:
                store.set_feedback_comment(session, feedback_id, value.strip())

    # -- helpers -----------------------------------------------------------------------------------
    @staticmethod
    def _react(client: WebClient, channel: str, ts: str, method: str) -> None:
        """The 👀 'working on it' sign; a failure here must not cost the answer."""
        try:
            getattr(client, method)(channel=channel, timestamp=ts, name=WORKING_REACTION)
        except Exception as exc:
            log.debug("%s failed: %s", method, exc)

    @staticmethod
    def _post_quietly(client: WebClient, **kwargs: Any) -> None:
        try:
            client.chat_postMessage(**kwargs)
        except Exception:
            log.exception("Could not tell the user about a failure")
