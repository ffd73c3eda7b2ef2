"""An answer's way into a Slack thread while it is written: assistant-pane statuses and title, the LLM's text
streamed (`chat.startStream` / `appendStream` / `stopStream`) as it comes, and the finished answer delivered so
that the thread ends with exactly one answer, whatever failed on the way. Without streamed text (no LLM, no
passage good enough) the answer is posted whole, as before streaming existed."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from slack_sdk import WebClient

from bot.answering import AnswerProgress
from bot.slack import blocks

log = logging.getLogger(__name__)

SEARCHING = "is searching the knowledge base…"
WRITING = "is writing the answer…"
TITLE_CHARS = 60  # the pane's thread list shows about this much
FLUSH_CHARS = 120  # stream text in pieces of about this size (chat.appendStream is rate limited) ...
FLUSH_S = 0.5  # ... or at least this often while the LLM writes


def reading_status(passages: int) -> str:
    return f"is reading {passages} passage{'' if passages == 1 else 's'}…"


def thread_title(question: str, limit: int = TITLE_CHARS) -> str:
    """The pane thread's title from its first question: one line, cut at a word end with an ellipsis."""
    line = " ".join(question.split())
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:.") + "…"


def set_status(client: WebClient, channel: str, thread_ts: str, status: str) -> None:
    """An assistant thread's status line; a workspace without `assistant:write` must not cost the answer."""
    try:
        client.assistant_threads_setStatus(channel_id=channel, thread_ts=thread_ts, status=status)
    except Exception as exc:
        log.warning("Could not set the status of %s/%s: %s", channel, thread_ts, exc)


def post_ephemeral(
    client: WebClient,
    *,
    channel: str,
    user: str,
    thread_ts: str | None,
    question_ts: str | None,
    text: str,
    blocks: list[dict[str, Any]] | None = None,
) -> None:
    """A message only `user` sees (`chat.postEphemeral`), in the question's thread. Slack shows an ephemeral
    message in a thread only when the thread already exists, so for a question that starts its thread (its ts is
    the thread's) it goes in the channel instead, still to the asker alone."""
    client.chat_postEphemeral(
        channel=channel,
        user=user,
        thread_ts=thread_ts if thread_ts and thread_ts != question_ts else None,
        text=text,
        blocks=blocks,
    )


def _same_text(a: str, b: str) -> bool:
    """Streamed pieces joined equal the final answer up to white space."""
    return "".join(a.split()) == "".join(b.split())


class ThreadReply(AnswerProgress):
    """One question's answer in its thread. `AnswerService.ask` reports to it (statuses in assistant threads,
    streamed text everywhere); then `answer` (or `say`, for a failure) delivers the result, once.

    The stream starts on the first text, so an answer that never streams is posted whole. When the streamed text
    is the final answer and it fits one message, the stream stops with the sources and feedback buttons;
    otherwise (the LLM broke off and the extractive answer replaced it, the answer is too long, a stream call
    failed) the streamed message is replaced with the whole answer, and if even that fails the answer is posted
    as a new message.

    `ephemeral` (a channel whose preset keeps answers to the asker): the answer and any failure go to the asker
    alone with `chat.postEphemeral`, in the thread (see `post_ephemeral`; `question_ts` tells whether the question
    started it). Nothing streams: an ephemeral message cannot be updated (no `chat.update`, no `chat.appendStream`),
    so the complete answer is posted once it is written."""

    def __init__(
        self,
        client: WebClient,
        *,
        channel: str,
        thread_ts: str,
        user: str | None,
        team_id: str | None,
        assistant: bool = False,
        title: str | None = None,
        earlier_ts: str | None = None,
        on_stream_started: Callable[[str], None] | None = None,
        ephemeral: bool = False,
        question_ts: str | None = None,
    ) -> None:
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self.user = user
        self.team_id = team_id
        self.assistant = assistant  # an assistant-pane thread: statuses and a title
        self.title = title  # set on the thread when the answer starts (the thread's first question)
        self.stream_ts: str | None = None
        self._received: list[str] = []  # every streamed piece, as the LLM wrote it
        self._buffer = ""  # escaped text not sent yet
        self._sent = 0  # characters sent into the stream
        self._last_flush = 0.0
        # An earlier attempt's half-streamed message (its process died): this attempt does not stream, and its
        # answer (or failure) replaces that message, so the thread still ends with one answer.
        self.earlier_ts = earlier_ts
        self.on_stream_started = on_stream_started  # remembers the stream's message for a later attempt
        # Only to the asker: never streamed (see above); without an asker to address, the thread gets it.
        self.ephemeral = ephemeral and bool(user)
        self.question_ts = question_ts
        self._no_stream = earlier_ts is not None or self.ephemeral  # or startStream failed: posted whole
        self._broken = False  # a later stream call failed, or the text outgrew one message: replace at the end

    # -- progress ----------------------------------------------------------------------------------
    def searching(self, question: str) -> None:
        if not self.assistant:
            return
        set_status(self.client, self.channel, self.thread_ts, SEARCHING)
        if self.title:
            try:
                self.client.assistant_threads_setTitle(
                    channel_id=self.channel, thread_ts=self.thread_ts, title=thread_title(self.title)
                )
            except Exception as exc:
                log.warning("Could not set the title of %s/%s: %s", self.channel, self.thread_ts, exc)

    def reading(self, passages: int) -> None:
        if self.assistant:
            set_status(self.client, self.channel, self.thread_ts, reading_status(passages))

    def writing(self) -> None:
        if self.assistant:
            set_status(self.client, self.channel, self.thread_ts, WRITING)

    def text(self, delta: str) -> None:
        self._received.append(delta)
        if self._no_stream or self._broken:
            return
        self._buffer += blocks.markdown_text(delta)
        if self._sent + len(self._buffer) > blocks.MARKDOWN_LIMIT:
            self._broken = True  # more than one message holds: the whole answer replaces the stream at the end
            return
        if self.stream_ts is None:
            if self._buffer.strip():
                self._start()
        elif len(self._buffer) >= FLUSH_CHARS or time.monotonic() - self._last_flush >= FLUSH_S:
            self._append()

    @property
    def streamed_text(self) -> str:
        return "".join(self._received)

    # -- delivery ----------------------------------------------------------------------------------
    def answer(self, view: blocks.AnswerView, messages: Sequence[blocks.SlackMessage]) -> None:
        """Deliver the finished answer (`messages` are `blocks.answer_messages(view)`): the stream's end, or the
        messages posted whole. Raises only when even posting fails."""
        if self.stream_ts is None and self.earlier_ts is not None:
            self._replace_earlier(messages)
            return
        if self.stream_ts is None:
            self._post(messages)
            return
        if not self._broken and len(messages) == 1 and _same_text(self.streamed_text, view.answer):
            try:
                self.client.chat_stopStream(
                    channel=self.channel,
                    ts=self.stream_ts,
                    markdown_text=self._buffer or None,
                    blocks=blocks.answer_tail(view),
                )
                return
            except Exception as exc:
                log.warning("Could not stop the stream %s/%s: %s", self.channel, self.stream_ts, exc)
        else:
            self._stop_quietly()
        self._replace(messages)

    def say(self, text: str) -> None:
        """A failure or a refusal told in the thread instead of an answer (in the streamed message when one was
        started, so the thread never keeps a half answer next to it). Never raises."""
        message = blocks.SlackMessage(text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}])
        try:
            if self.stream_ts is None and self.earlier_ts is not None:
                self._replace_earlier([message])
                return
            if self.stream_ts is None and self.ephemeral:
                self._post_ephemeral(message)
                return
            if self.stream_ts is None:
                self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread_ts, text=text)
                return
            self._stop_quietly()
            self._replace([message])
        except Exception:
            log.exception("Could not tell the user about a failure")

    # -- the stream --------------------------------------------------------------------------------
    def _start(self) -> None:
        try:
            started = self.client.chat_startStream(
                channel=self.channel,
                thread_ts=self.thread_ts,
                recipient_team_id=self.team_id,
                recipient_user_id=self.user,
                markdown_text=self._buffer,
            )
            ts = started.get("ts")
            if not isinstance(ts, str) or not ts:
                raise ValueError("chat.startStream returned no ts")
        except Exception as exc:  # an older workspace, a missing scope, an API error: post the answer whole
            log.warning("Could not start streaming into %s/%s: %s", self.channel, self.thread_ts, exc)
            self._no_stream = True
            return
        self.stream_ts = ts
        self._sent, self._buffer, self._last_flush = len(self._buffer), "", time.monotonic()
        if self.on_stream_started is not None:
            try:
                self.on_stream_started(ts)
            except Exception:  # the answer still comes; only a crash after this would leave a second message
                log.warning("Could not remember the streamed message %s/%s", self.channel, ts, exc_info=True)

    def _append(self) -> None:
        try:
            self.client.chat_appendStream(channel=self.channel, ts=self.stream_ts, markdown_text=self._buffer)
        except Exception as exc:
            log.warning("Could not stream into %s/%s: %s", self.channel, self.stream_ts, exc)
            self._broken = True
            return
        self._sent, self._buffer, self._last_flush = self._sent + len(self._buffer), "", time.monotonic()

    def _stop_quietly(self) -> None:
        """End the stream before its message is replaced (it may have ended already: that is fine)."""
        try:
            self.client.chat_stopStream(channel=self.channel, ts=self.stream_ts)
        except Exception as exc:
            log.info("Could not stop the stream %s/%s: %s", self.channel, self.stream_ts, exc)

    def _replace_earlier(self, messages: Sequence[blocks.SlackMessage]) -> None:
        """End the stream a dead process left (Slack may have ended it already) and put the answer in its place."""
        self.stream_ts = self.earlier_ts
        self._stop_quietly()
        self._replace(messages)

    def _replace(self, messages: Sequence[blocks.SlackMessage]) -> None:
        """The streamed message becomes the answer's first message, the rest follow; if it cannot be updated,
        the whole answer is posted."""
        first, *rest = messages
        try:
            self.client.chat_update(channel=self.channel, ts=self.stream_ts, text=first.text, blocks=first.blocks)
        except Exception as exc:
            log.warning("Could not replace the streamed message %s/%s: %s", self.channel, self.stream_ts, exc)
            self._post(messages)
            return
        self._post(rest)

    def _post(self, messages: Sequence[blocks.SlackMessage]) -> None:
        for message in messages:
            if self.ephemeral:
                self._post_ephemeral(message)
                continue
            self.client.chat_postMessage(
                channel=self.channel,
                thread_ts=self.thread_ts,
                text=message.text,
                blocks=message.blocks,
                unfurl_links=False,
            )

    def _post_ephemeral(self, message: blocks.SlackMessage) -> None:
        post_ephemeral(
            self.client,
            channel=self.channel,
            user=self.user or "",
            thread_ts=self.thread_ts,
            question_ts=self.question_ts,
            text=message.text,
            blocks=message.blocks,
        )
