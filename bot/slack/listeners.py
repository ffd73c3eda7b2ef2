"""Slack listeners: acknowledge at once, claim the message and queue the question as a durable job in one
transaction (exactly-once), then wake a worker. Answering never runs on a request thread."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker

import store
from bot.answering import AnswerError, AnswerService, QuestionError, Turn
from bot.slack import blocks, inbound, threads
from bot.slack.assistant import ASSISTANT_KIND, Pane
from bot.slack.identity import BotIdentity
from bot.slack.inbound import question_text
from bot.slack.metrics import BotMetrics
from bot.slack.streaming import SEARCHING, post_ephemeral, set_status
from bot.slack.worker import AnswerWorkers, Outcome

log = logging.getLogger(__name__)
_DIGITS = re.compile(r"[0-9]{1,19}")
WORKING_REACTION = "eyes"
# Instead of the 👀 reaction when the channel's preset answers the asker alone.
PRIVATE_SEARCHING = "Searching the knowledge base… Only you will see the answer."


class BadPayload(ValueError):
    """A signed payload without the values our own messages and modals put there: ignored with a warning."""


def field(body: Any, *path: str | int) -> Any:
    """`body[path[0]][path[1]]...`, or `BadPayload` naming the path where the payload is not shaped so."""
    value = body
    for key in path:
        if isinstance(key, int):
            ok = isinstance(value, list) and 0 <= key < len(value)
        else:
            ok = isinstance(value, dict) and key in value
        if not ok:
            raise BadPayload(f"no {'.'.join(map(str, path))}")
        value = value[key]
    return value


def text_field(body: Any, *path: str | int) -> str:
    """A non-empty string at `path` (an id, a ts, a trigger), else `BadPayload`."""
    value = field(body, *path)
    if not isinstance(value, str) or not value:
        raise BadPayload(f"{'.'.join(map(str, path))} is not a string")
    return value


def row_id(value: Any, what: str) -> int:
    """A database id carried in a payload (a button's value, a modal's metadata): 1 to 2^63 - 1."""
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= store.MAX_ROW_ID:
        raise BadPayload(f"{what} is not an id")
    return value


def after_ack(listener: Callable[..., None]) -> Callable[..., None]:
    """A listener acks first; what fails after that is logged here. Left to Bolt, a failure racing the ack can
    turn the 200 Slack is owed into a 500. A `BadPayload` is someone else's mistake: a warning, no traceback."""

    @functools.wraps(listener)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            listener(*args, **kwargs)
        except BadPayload as exc:
            log.warning("Ignored a Slack payload for %s: %s", listener.__name__, exc)
        except Exception:
            log.exception("The Slack listener %s failed after its ack", listener.__name__)

    return run


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
        *,
        allow_external: bool = False,
        history_tokens: int = 2000,
    ) -> None:
        self.answers = answers
        self.sessions = sessions
        self.client = client
        self.workers = workers
        self.metrics = metrics
        self.allow_external = allow_external  # SLACK_ALLOW_EXTERNAL: a preset's allow_external also lets them in
        self.history_tokens = history_tokens  # SLACK_HISTORY_TOKENS: the thread a follow-up carries
        self.identity = BotIdentity(client)  # ragbot's ids (its answers in a thread) and team (streams)
        self.pane = Pane(answers, sessions, client, self._take_question, self.identity)  # Agents & AI apps

    def register(self, app: App, slash_command: str) -> None:
        app.use(self.pane.middleware())  # assistant threads' events and messages; other DMs reach on_message
        app.event("app_mention")(after_ack(self.on_mention))
        app.event("message")(after_ack(self.on_message))
        app.command(slash_command)(self.on_command)  # its ack carries the reply: it catches its own failures
        app.action(blocks.ACTION_FEEDBACK)(after_ack(self.on_feedback))
        app.action(blocks.ACTION_HELPFUL)(after_ack(self.on_helpful))  # buttons of answers posted before
        app.action(blocks.ACTION_NOT_HELPFUL)(after_ack(self.on_not_helpful))
        app.action(blocks.ACTION_SHARE)(after_ack(self.on_share))
        app.view(blocks.COMMENT_MODAL)(after_ack(self.on_comment))

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
        text = event.get("text")
        mentions_bot = bool(context.bot_user_id) and isinstance(text, str) and f"<@{context.bot_user_id}" in text
        # a channel mention also arrives as app_mention: the claim keeps one
        if is_dm or mentions_bot or self._is_follow_up(body, event, context.bot_user_id):
            self._take_question(body, event, client)

    def _is_follow_up(self, body: dict[str, Any], event: dict[str, Any], bot_user_id: str | None) -> bool:
        """A channel thread message without a mention is a question for ragbot when ragbot answered in that
        thread before, the channel's preset has follow-ups on, and the message does not speak to someone else.
        Not from a user ragbot does not answer (another organisation's): they are refused when they mention
        ragbot, not at every message they write in the thread."""
        channel, ts = optional_text(event.get("channel")), optional_text(event.get("ts"))
        thread_ts = optional_text(event.get("thread_ts"))
        if not channel or not ts or not thread_ts or thread_ts == ts:
            return False
        if threads.addressed_to_someone_else(optional_text(event.get("text")) or "", bot_user_id):
            return False
        with self.sessions() as session:
            if not store.answered_in_thread(session, channel, thread_ts):
                return False
        return self.answers.preset(channel).follow_ups and self._refused_team(body, event, channel) is None

    def _take_question(
        self, body: dict[str, Any], event: dict[str, Any], client: WebClient, kind: str = "mention"
    ) -> None:
        channel, ts = text_field(event, "channel"), text_field(event, "ts")
        thread_ts = optional_text(event.get("thread_ts")) or ts
        question = question_text(optional_text(event.get("text")) or "")
        user = optional_text(event.get("user"))
        files = inbound.file_names(event)
        try:
            refused_team = self._refused_team(body, event, channel)
            with self.sessions.begin() as session:
                if not store.claim_slack_event(session, channel, ts, optional_text(body.get("event_id"))):
                    self.metrics.events.labels(kind="mention", outcome="duplicate").inc()
                    return  # a retry, the same mention as another event type, or another bot process got it
                if refused_team:  # recorded with the claim: a retried delivery neither refuses nor records again
                    store.record_refusal(
                        session, "external", channel=channel, user=user, user_team=refused_team, question=question
                    )
                elif question:
                    store.enqueue_job(
                        session,
                        kind=kind,
                        question=question,
                        channel=channel,
                        ts=ts,
                        thread_ts=thread_ts,
                        user=user,
                        attachments=files or None,
                    )
                    position = max(0, store.open_jobs(session) - self.workers.workers)
        except Exception as exc:  # the database is down: say so rather than go quiet
            self.metrics.events.labels(kind="mention", outcome="refused").inc()
            reference = reference_for(exc)
            log.exception("Claiming %s/%s failed (reference %s)", channel, ts, reference, extra=_where(channel, ts))
            self._post_quietly(client, channel=channel, thread_ts=thread_ts, text=blocks.error_text(reference))
            return
        if refused_team:
            self.metrics.events.labels(kind="mention", outcome="external").inc()
            log.info(
                "Refused %s/%s from %s of team %s: external users are not answered here",
                channel,
                ts,
                user,
                refused_team,
                extra=_where(channel, ts),
            )
            client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=inbound.EXTERNAL_REFUSAL)
            return
        self.metrics.events.labels(kind="mention", outcome="queued" if question else "empty").inc()
        if not question:
            text = "Ask me a question after the mention, e.g. “@ragbot how do I set up SAML with Okta?”"
            client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, text=inbound.files_only_reply(files) if files else text
            )
            return
        if kind == ASSISTANT_KIND:  # the pane shows a status, not a reaction
            set_status(client, channel, thread_ts, SEARCHING)
        elif user and self._private(kind, channel, user):  # no public 👀 for an answer nobody else will see
            self._tell_privately(client, channel, user, thread_ts, ts, PRIVATE_SEARCHING)
        else:
            self._react(client, channel, ts, "reactions_add")
        self.workers.wake()
        if position and user:
            client.chat_postEphemeral(
                channel=channel,
                user=user,
                thread_ts=thread_ts,
                text=f"I'm busy answering other questions; yours is queued (number {position} in line).",
            )

    def _refused_team(self, body: dict[str, Any], event: dict[str, Any], channel: str) -> str | None:
        """The other organisation whose user sent this, when its users are not answered here (neither
        SLACK_ALLOW_EXTERNAL nor the channel's preset allows them)."""
        team = inbound.external_team(body, event)
        if team is None or self.allow_external or self.answers.preset(channel).allow_external:
            return None
        return team

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
        if job.channel and job.user and self._ephemeral(job):
            self._tell_privately(self.client, job.channel, job.user, job.thread_ts, job.ts, text)
        else:
            self._post_quietly(self.client, channel=job.channel, thread_ts=job.thread_ts, text=text)
        self._react(self.client, job.channel, job.ts, "reactions_remove")

    def _answer_in_thread(self, job: store.AnswerJob) -> Outcome:
        client, channel, ts = self.client, job.channel, job.ts
        ephemeral = self._ephemeral(job)
        # statuses in the pane; the LLM's text streamed into the thread (an ephemeral answer is posted whole)
        reply = self.pane.reply_for(job, ephemeral=ephemeral)
        try:
            result = self.answers.ask(
                job.question,
                channel=channel,
                user=job.user,
                history=self._thread_history(job),
                preset_name=self.pane.preset_name_for(job),
                progress=reply,
            )
            self.metrics.answered(result)
            view = blocks.AnswerView.from_result(result, unread_files=job.attachments)
            if ephemeral:  # "Still need help?" hands over a message others can see; only the asker sees this one
                view = dataclasses.replace(view, escalates=False)
            reply.answer(view, blocks.answer_messages(view))
            return Outcome(True, result.ranking_id)
        except QuestionError as exc:
            self.metrics.answers.labels(outcome="unusable").inc()
            reply.say(str(exc))
            return Outcome(False, error=str(exc))
        except Exception as exc:
            self.metrics.failed(exc)
            reference = reference_for(exc)
            log.exception(
                "Answering %s/%s failed (reference %s)", channel, ts, reference, extra=_where(channel, ts, exc)
            )
            reply.say(blocks.error_text(reference))
            return _told(exc, reference)
        finally:
            if job.kind != ASSISTANT_KIND:
                self._react(client, channel, ts, "reactions_remove")

    def _ephemeral(self, job: store.AnswerJob) -> bool:
        return self._private(job.kind, job.channel, job.user)

    def _private(self, kind: str, channel: str | None, user: str | None) -> bool:
        """Whether the answer goes to the asker alone: a question in a channel (not a DM, not the assistant pane:
        those are private already) whose preset says `reply_visibility` "ephemeral". When the preset cannot be
        read, the thread gets the answer (the answer service reports that failure itself)."""
        if kind != "mention" or not channel or channel.startswith("D") or not user:
            return False
        try:
            return self.answers.preset(channel).reply_visibility == "ephemeral"
        except Exception:
            log.warning("Could not read the preset of %s; answering in the thread", channel, exc_info=True)
            return False

    def _thread_history(self, job: store.AnswerJob) -> list[Turn]:
        """The thread before this question as its conversation (none for a thread's first message)."""
        if not job.thread_ts or job.thread_ts == job.ts:
            return []
        return threads.thread_history(
            self.client, self.identity, job.channel, job.thread_ts, job.ts, self.history_tokens
        )

    # -- slash command -----------------------------------------------------------------------------
    def on_command(self, command: dict[str, Any], ack: Ack) -> None:
        question = " ".join((optional_text(command.get("text")) or "").split())
        if not question:
            self.metrics.events.labels(kind="command", outcome="empty").inc()
            ack(text=f"Usage: {blocks.escape(optional_text(command.get('command')) or '/ask')} your question")
            return
        response_url = optional_text(command.get("response_url"))
        if response_url is None:
            log.warning("Ignored a slash command without a response_url")
            ack()
            return
        try:
            with self.sessions.begin() as session:
                store.enqueue_job(
                    session,
                    kind="command",
                    question=question,
                    channel=optional_text(command.get("channel_id")),
                    user=optional_text(command.get("user_id")),
                    response_url=response_url,
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
        searching = f"Searching the knowledge base for: {blocks.escape(question)}"
        if position:
            searching += f"\nI'm busy answering other questions; yours is queued (number {position} in line)."
        ack(response_type="ephemeral", text=searching)

    def _answer_command(self, job: store.AnswerJob) -> Outcome:
        respond = Respond(response_url=job.response_url)
        try:
            result = self.answers.ask(job.question, channel=job.channel, user=job.user)
            self.metrics.answered(result)
            view = blocks.AnswerView.from_result(result)
            for n, message in enumerate(blocks.answer_messages(view, actions="share")):
                respond(
                    response_type="ephemeral",
                    replace_original=n == 0,
                    text=message.text,
                    blocks=message.blocks,
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
        ranking_id = row_id(field(body, "actions", 0, "value"), "the shared ranking")
        channel, user = text_field(body, "channel", "id"), text_field(body, "user", "id")
        text_field(body, "response_url")  # `respond` answers there: the ephemeral answer is deleted once shared
        with self.sessions() as session:
            ranking = session.get(store.RankingLog, ranking_id)
            view = blocks.AnswerView.from_log(ranking) if ranking else None
        if view is None:
            respond(response_type="ephemeral", replace_original=False, text="That answer is no longer available.")
            return
        try:
            for message in blocks.shared_answer_messages(view, user, ranking.question):
                client.chat_postMessage(channel=channel, text=message.text, blocks=message.blocks, unfurl_links=False)
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
    def on_feedback(self, body: dict[str, Any], ack: Ack, client: WebClient) -> None:
        """A press on Slack's `feedback_buttons`: the action's `value` is the pressed button's, `<vote>:<id>`."""
        ack()
        vote, _, ranking = text_field(body, "actions", 0, "value").partition(":")
        if vote not in blocks.VOTES:
            raise BadPayload("the feedback value names no vote")
        self._feedback(body, client, row_id(ranking, "the voted ranking"), blocks.VOTES[vote])

    def on_helpful(self, body: dict[str, Any], ack: Ack, client: WebClient) -> None:
        ack()
        self._feedback(body, client, row_id(field(body, "actions", 0, "value"), "the voted ranking"), +1)

    def on_not_helpful(self, body: dict[str, Any], ack: Ack, client: WebClient) -> None:
        ack()
        self._feedback(body, client, row_id(field(body, "actions", 0, "value"), "the voted ranking"), -1)

    def _feedback(self, body: dict[str, Any], client: WebClient, ranking_id: int, value: int) -> None:
        """Store the vote; a 👎 opens the comment modal (so it needs the press's trigger, checked first)."""
        trigger_id = optional_text(body.get("trigger_id"))
        if value < 0 and trigger_id is None:
            raise BadPayload("no trigger_id")
        feedback_id = self._vote(body, client, ranking_id, value)
        if value < 0 and feedback_id is not None and trigger_id is not None:
            client.views_open(trigger_id=trigger_id, view=blocks.comment_modal(feedback_id))

    def _vote(self, body: dict[str, Any], client: WebClient, ranking_id: int, value: int) -> int | None:
        user = text_field(body, "user", "id")
        with self.sessions.begin() as session:
            if store.user_feedback(session, ranking_id, user) is not None:
                return None  # a double click, or a second delivery of the same press
            if session.get(store.RankingLog, ranking_id) is None:
                raise BadPayload(f"no ranking {ranking_id}")
            feedback_id = store.add_feedback(session, ranking_id, value, user=user).id
        self.metrics.feedback.labels(vote="helpful" if value > 0 else "not_helpful").inc()
        container = body.get("container")
        if isinstance(container, dict) and container.get("is_ephemeral") is True:
            self._thank_ephemeral(body, ranking_id, user, value)
            return feedback_id
        message, channel = body.get("message"), body.get("channel")
        if isinstance(message, dict) and isinstance(channel, dict):
            ts, channel_id, shown = message.get("ts"), channel.get("id"), message.get("blocks")
            if isinstance(ts, str) and isinstance(channel_id, str) and isinstance(shown, list):
                client.chat_update(
                    channel=channel_id,
                    ts=ts,
                    text=optional_text(message.get("text")) or "",
                    blocks=blocks.replace_feedback_buttons([b for b in shown if isinstance(b, dict)], user, value),
                )
        return feedback_id

    def _thank_ephemeral(self, body: dict[str, Any], ranking_id: int, user: str, value: int) -> None:
        """An ephemeral answer cannot be changed with `chat.update`, and Slack sends no `message` with a press on
        one: its `response_url` replaces it, rebuilt from the ranking log (its last message, the one that carries
        the buttons) with the buttons swapped for the thank-you line."""
        response_url = optional_text(body.get("response_url"))
        if response_url is None:
            return  # the vote is stored; the buttons stay
        with self.sessions() as session:
            ranking = session.get(store.RankingLog, ranking_id)
            view = blocks.AnswerView.from_log(ranking) if ranking else None
        if view is None:
            return
        last = blocks.answer_messages(dataclasses.replace(view, escalates=False))[-1]
        Respond(response_url=response_url)(
            replace_original=True,
            response_type="ephemeral",
            text=last.text,
            blocks=blocks.replace_feedback_buttons(last.blocks, user, value),
        )

    def on_comment(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        ack()
        try:
            metadata = json.loads(text_field(view, "private_metadata"))
        except (ValueError, RecursionError) as exc:
            raise BadPayload("private_metadata is not JSON") from exc
        feedback_id = row_id(field(metadata, "feedback_id"), "the commented feedback")
        user = text_field(body, "user", "id")
        try:
            comment = optional_text(field(view, "state", "values", "comment", "text", "value"))
        except BadPayload:
            comment = None
        if not comment or not comment.strip():
            return  # the comment is optional
        with self.sessions.begin() as session:
            feedback = session.get(store.Feedback, feedback_id)
            if feedback is None or feedback.user != user:
                raise BadPayload(f"feedback {feedback_id} is not {user}'s")
            store.set_feedback_comment(session, feedback_id, comment.strip()[: blocks.COMMENT_MAX_CHARS])

    # -- helpers -----------------------------------------------------------------------------------
    @staticmethod
    def _react(client: WebClient, channel: str, ts: str, method: str) -> None:
        """The 👀 'working on it' sign; a failure here must not cost the answer."""
        try:
            getattr(client, method)(channel=channel, timestamp=ts, name=WORKING_REACTION)
        except Exception as exc:
            log.debug("%s failed: %s", method, exc)

    @staticmethod
    def _tell_privately(
        client: WebClient, channel: str, user: str, thread_ts: str | None, question_ts: str | None, text: str
    ) -> None:
        """A notice only the asker sees; a failure here must not cost the answer."""
        try:
            post_ephemeral(client, channel=channel, user=user, thread_ts=thread_ts, question_ts=question_ts, text=text)
        except Exception as exc:
            log.warning("Could not tell %s in %s: %s", user, channel, exc)

    @staticmethod
    def _post_quietly(client: WebClient, **kwargs: Any) -> None:
        try:
            client.chat_postMessage(**kwargs)
        except Exception:
            log.exception("Could not tell the user about a failure")


def optional_text(value: Any) -> str | None:
    """A payload's optional string (a thread ts, a user id, a message's text); anything else counts as absent."""
    return value if isinstance(value, str) and value else None
