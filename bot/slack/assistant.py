"""The assistant pane (Slack's AI-app surface), on Bolt's `Assistant` middleware: a new thread is greeted with
suggested prompts from the preset of the channel the user is looking at; that channel (the thread's context,
kept in the database so every bot process sees it) steers the thread's answers; a message in the pane is a
durable job like any question, with a status shown at once instead of the 👀 reaction."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Assistant
from slack_bolt.context.assistant.thread_context import AssistantThreadContext
from slack_bolt.context.assistant.thread_context_store.store import AssistantThreadContextStore
from slack_sdk import WebClient
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

import store
from bot.answering import AnswerService
from bot.slack.identity import BotIdentity
from bot.slack.streaming import ThreadReply

log = logging.getLogger(__name__)

ASSISTANT_KIND = "assistant"  # the answer_jobs kind of a question asked in the pane
GREETING = "Hi! I answer from the team's knowledge base, with sources. What would you like to know?"
PROMPTS_TITLE = "Try asking"
MAX_PROMPTS = 4  # Slack shows up to four
PROMPT_TITLE_CHARS = 75
# The stock prompts of a sales / support knowledge base, for a preset that names none.
STOCK_PROMPTS: tuple[tuple[str, str], ...] = (
    ("Set up single sign-on", "How do I set up SAML single sign-on with Okta?"),
    ("Compare plans", "Which features does each plan include, and what does the Business plan add?"),
    ("Provision users", "How do I configure SCIM user provisioning?"),
    ("Troubleshoot", "A customer reports that login fails after enabling SSO. What should I check?"),
)

TakeQuestion = Callable[..., None]  # SlackListeners._take_question(body, event, client, kind=...)


class DatabaseThreadContextStore(AssistantThreadContextStore):
    """Assistant thread contexts in the database (`assistant_threads`), not in one process's memory or in
    message metadata: whichever process answers a thread finds what its user is looking at."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def save(self, *, channel_id: str, thread_ts: str, context: dict[str, str]) -> None:
        """Insert or replace. Two processes (or listener threads) saving a new thread's first context at once:
        the loser's insert collides, and its second try replaces the row."""
        for attempt in range(2):
            try:
                with self.sessions.begin() as session:
                    store.save_assistant_context(session, channel_id, thread_ts, dict(context))
                return
            except IntegrityError:
                if attempt:
                    raise

    def save_first(self, *, channel_id: str, thread_ts: str, context: dict[str, str]) -> None:
        """A thread's opening context, unless a (newer) context change was saved already: Slack's events may
        arrive in any order."""
        try:
            with self.sessions.begin() as session:
                if store.assistant_context(session, channel_id, thread_ts) is None:
                    store.save_assistant_context(session, channel_id, thread_ts, dict(context))
        except IntegrityError:
            pass  # a context change got there first: it is the newer one

    def find(self, *, channel_id: str, thread_ts: str) -> AssistantThreadContext | None:
        with self.sessions() as session:
            context = store.assistant_context(session, channel_id, thread_ts)
        if not context or not isinstance(context.get("channel_id"), str):
            return None
        return AssistantThreadContext(context)


def suggested_prompts(prompts: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    """A preset's prompts (else the stock set) as Slack's `{title, message}` list, at most four."""
    chosen = [(title, message) for title, message in prompts if message.strip()] or list(STOCK_PROMPTS)
    return [
        {"title": (title.strip() or message.strip())[:PROMPT_TITLE_CHARS], "message": message.strip()}
        for title, message in chosen[:MAX_PROMPTS]
    ]


class Pane:
    """The pane's listeners (`middleware()`, registered with `app.use`) and what answering a pane question
    needs: the preset its thread's context resolves to, and the reply that shows statuses and streams."""

    def __init__(
        self,
        answers: AnswerService,
        sessions: sessionmaker[Session],
        client: WebClient,
        take_question: TakeQuestion,
        identity: BotIdentity,
    ) -> None:
        self.answers = answers
        self.sessions = sessions
        self.client = client
        self.take_question = take_question
        self.contexts = DatabaseThreadContextStore(sessions)
        self.identity = identity

    def middleware(self) -> Assistant:
        """Bolt's `Assistant` with the pane's handlers (Bolt acks each event before they run)."""
        assistant = Assistant(thread_context_store=self.contexts, logger=log)
        assistant.thread_started(self.on_thread_started)
        assistant.thread_context_changed(self.on_context_changed)
        assistant.user_message(self.on_user_message)
        return assistant

    # -- events ------------------------------------------------------------------------------------
    def on_thread_started(self, event: dict[str, Any], say: Any, set_suggested_prompts: Any) -> None:
        """Greet and suggest prompts from the preset of the channel the user opened the pane in."""
        context = _context_of(event)
        thread = event.get("assistant_thread") or {}
        self._save(thread, context, first=True)  # before the greeting: a context change may follow at once
        try:
            say(GREETING)
        except Exception:
            log.exception("Could not greet in the assistant thread %s", thread.get("thread_ts"))
        try:
            preset = self.answers.preset(_channel_of(context))
            set_suggested_prompts(prompts=suggested_prompts(preset.suggested_prompts), title=PROMPTS_TITLE)
        except Exception:
            log.exception("Could not suggest prompts in the assistant thread %s", thread.get("thread_ts"))

    def on_context_changed(self, event: dict[str, Any]) -> None:
        """The user looks at another channel: its preset answers the thread's next questions."""
        self._save(event.get("assistant_thread") or {}, _context_of(event))

    def on_user_message(self, body: dict[str, Any], event: dict[str, Any], client: WebClient) -> None:
        """A question in the pane (or any DM thread reply): the same durable path as a DM."""
        try:
            self.take_question(body, event, client, kind=ASSISTANT_KIND)
        except Exception:
            log.exception("Taking the assistant thread question %s failed", event.get("ts"))

    def _save(self, thread: dict[str, Any], context: dict[str, Any], first: bool = False) -> None:
        channel, thread_ts = thread.get("channel_id"), thread.get("thread_ts")
        if not (isinstance(channel, str) and isinstance(thread_ts, str)):
            log.warning("Ignored an assistant thread event without its thread")
            return
        if not _channel_of(context):
            return  # opened outside a channel: the thread keeps the default preset
        try:
            save = self.contexts.save_first if first else self.contexts.save
            save(channel_id=channel, thread_ts=thread_ts, context=context)
        except Exception:
            log.exception("Could not save the context of the assistant thread %s/%s", channel, thread_ts)

    # -- answering ---------------------------------------------------------------------------------
    def preset_name_for(self, job: store.AnswerJob) -> str | None:
        """The preset of the channel a pane thread's user looks at (None: the DM channel's, i.e. the default)."""
        if job.kind != ASSISTANT_KIND or not job.channel or not job.thread_ts:
            return None
        try:
            context = self.contexts.find(channel_id=job.channel, thread_ts=job.thread_ts)
            return self.answers.preset(context.channel_id).name if context else None
        except Exception:
            log.warning("Could not resolve the preset of the assistant thread %s", job.thread_ts, exc_info=True)
            return None

    def reply_for(self, job: store.AnswerJob, *, ephemeral: bool = False) -> ThreadReply:
        """How the job's answer goes out: streamed when the LLM streams (the stream's message is kept with the job,
        so an attempt after a crash replaces it); with statuses and, for a thread's first question, its title in
        the pane. `ephemeral`: to the asker only, posted whole (a channel preset's `reply_visibility`)."""
        assistant = job.kind == ASSISTANT_KIND
        return ThreadReply(
            self.client,
            channel=job.channel or "",
            thread_ts=job.thread_ts or job.ts or "",
            user=job.user,
            team_id=self.identity.team_id(),
            assistant=assistant,
            title=job.question if assistant and self._first_in_thread(job) else None,
            earlier_ts=job.reply_ts,
            on_stream_started=lambda ts: store.set_reply_ts(self.sessions, job.id, ts),
            ephemeral=ephemeral and not assistant,
            question_ts=job.ts,
        )

    def _first_in_thread(self, job: store.AnswerJob) -> bool:
        try:
            with self.sessions() as session:
                earlier = session.scalar(
                    select(store.AnswerJob.id)
                    .where(
                        store.AnswerJob.channel == job.channel,
                        store.AnswerJob.thread_ts == job.thread_ts,
                        store.AnswerJob.id < job.id,
                    )
                    .limit(1)
                )
            return earlier is None
        except Exception:
            log.warning("Could not tell whether %s is a thread's first question", job.id, exc_info=True)
            return False


def _context_of(event: dict[str, Any]) -> dict[str, Any]:
    thread = event.get("assistant_thread")
    context = thread.get("context") if isinstance(thread, dict) else None
    return dict(context) if isinstance(context, dict) else {}


def _channel_of(context: dict[str, Any]) -> str | None:
    channel = context.get("channel_id")
    return channel if isinstance(channel, str) and channel else None
