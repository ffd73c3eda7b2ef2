""" "Still need help?": a press hands the answer's question to the people its preset names, a user group mentioned
in the thread and/or a support channel that gets the question, the answer and its sources, and tells the asker
where it went. Each ranking is escalated once (a double click, a second delivery or a second person's press does
not page anyone again), the escalation is logged with the ranking, and a target that fails is told, never
silent."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

import store
from bot.slack import blocks
from bot.slack.listeners import BadPayload, after_ack, field, optional_text, row_id, text_field

log = logging.getLogger(__name__)

USERGROUP, CHANNEL = "usergroup", "channel"  # store.models.ESCALATION_VIAS


@dataclass
class _Press:
    """What one press decided in the database: hand over to `targets`, or nothing (already done, or no one)."""

    ranking_id: int
    asker: str
    question: str
    view: blocks.AnswerView | None = None
    targets: list[tuple[str, str, int]] = dataclass_field(default_factory=list)  # (via, target, escalation id)
    earlier: list[tuple[str | None, str, str]] = dataclass_field(default_factory=list)  # (user, via, target)


@dataclass
class _Outcome:
    done: list[tuple[str, str]] = dataclass_field(default_factory=list)  # (via, target)
    failed: list[tuple[str, str, str, int]] = dataclass_field(default_factory=list)  # (via, target, error, row)


def _error(exc: Exception) -> str:
    """Slack's own error code when it gave one (`not_in_channel`, `channel_not_found`, ...)."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or exc)
    return type(exc).__name__


def _where(channel: str) -> str:
    """A channel as a mention; a DM (D...) cannot be opened by others, so it is named, not linked."""
    return "a direct message" if channel.startswith("D") else f"<#{channel}>"


def _target(via: str, target: str) -> str:
    return f"<!subteam^{target}>" if via == USERGROUP else f"<#{target}>"


class Escalations:
    """The `ragbot_escalate` button's listener. Registered by the app next to `SlackListeners` (not from it: this
    module reads payloads with the listeners' readers, and modules never import each other in a loop)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        # Serializes claims in this process (SQLite has no row locks); across processes the ranking row is locked.
        self._claiming = threading.Lock()

    def register(self, app: App) -> None:
        """Listen to the button; like every listener it acks first and logs what fails after."""
        app.action(blocks.ACTION_ESCALATE)(after_ack(self.on_press))

    def on_press(self, body: dict[str, Any], ack: Ack, client: WebClient) -> None:
        """Ack, claim the escalation once per ranking, hand it over, tell the asker and replace the button."""
        ack()
        ranking_id = row_id(field(body, "actions", 0, "value"), "the escalated ranking")
        user, channel = text_field(body, "user", "id"), text_field(body, "channel", "id")
        message = body.get("message") if isinstance(body.get("message"), dict) else {}
        container = body.get("container") if isinstance(body.get("container"), dict) else {}
        answer_ts = optional_text(message.get("ts")) or optional_text(container.get("message_ts"))
        if answer_ts is None:
            raise BadPayload("no message ts")
        thread_ts = optional_text(message.get("thread_ts")) or optional_text(container.get("thread_ts")) or answer_ts

        press = self._claim(ranking_id, user, channel)
        if press.earlier:
            if all(earlier_user == user for earlier_user, _, _ in press.earlier):
                return  # a double click or a second delivery: it was escalated once, for them
            who = ", ".join(sorted({f"<@{u}>" for u, _, _ in press.earlier if u})) or "someone"
            where = " and ".join(_target(via, target) for _, via, target in press.earlier)
            self._tell_presser(client, channel, user, thread_ts, f"{who} already asked {where} for help with this.")
            return
        if not press.targets:
            self._tell_presser(
                client,
                channel,
                user,
                thread_ts,
                "There is no one to hand this question to any more (its preset names no user group or support "
                "channel). Ask in the channel, or ask an admin to set one.",
            )
            return
        outcome = self._hand_over(client, press, user, channel, answer_ts, thread_ts)
        if outcome.failed:
            with self.sessions.begin() as session:  # a failed target was not escalated to: a later press retries it
                ids = [row for _, _, _, row in outcome.failed]
                session.execute(delete(store.Escalation).where(store.Escalation.id.in_(ids)))
        if outcome.done:
            self._replace_button(client, body, channel, user, outcome.done)

    # -- the database ------------------------------------------------------------------------------
    def _claim(self, ranking_id: int, user: str, channel: str) -> _Press:
        """Record the escalation to every target the preset names now, unless the ranking was escalated before."""
        with self._claiming, self.sessions.begin() as session:
            ranking = session.get(store.RankingLog, ranking_id, with_for_update=True)
            if ranking is None:
                raise BadPayload(f"no ranking {ranking_id}")
            if not self._answered_in(session, ranking, channel):
                raise BadPayload(f"ranking {ranking_id} was not answered in {channel}")
            press = _Press(ranking_id, ranking.user or user, ranking.question)
            if ranking.escalations:
                press.earlier = [(e.user, e.via, e.target) for e in ranking.escalations]
                return press
            preset = ranking.preset  # the preset as it is now: targets may have changed since the answer
            wanted = [
                (USERGROUP, preset.escalation_usergroup if preset else None),
                (CHANNEL, preset.escalation_channel if preset else None),
            ]
            for via, target in wanted:
                if target and target.strip():
                    row = store.add_escalation(session, ranking_id, user, via, target.strip())
                    press.targets.append((via, row.target, row.id))
            if press.targets:
                press.view = blocks.AnswerView.from_log(ranking)
            return press

    @staticmethod
    def _answered_in(session: Session, ranking: store.RankingLog, channel: str) -> bool:
        """Whether the ranking's answer was posted in `channel`: its logged channel, or the job that posted it
        (an assistant thread's answer may be logged with the channel its user was looking at)."""
        if ranking.channel == channel:
            return True
        job = select(store.AnswerJob.id).where(
            store.AnswerJob.ranking_id == ranking.id, store.AnswerJob.channel == channel
        )
        return session.scalar(job.limit(1)) is not None

    # -- Slack -------------------------------------------------------------------------------------
    def _hand_over(
        self, client: WebClient, press: _Press, user: str, channel: str, answer_ts: str, thread_ts: str
    ) -> _Outcome:
        """Post to the support channel first, so the thread can say where the question went; then one message in
        the thread that mentions the user group, tells the asker and names any target that failed."""
        outcome = _Outcome()
        group = next(((t, row) for via, t, row in press.targets if via == USERGROUP), None)
        for via, target, row in press.targets:
            if via != CHANNEL:
                continue
            try:
                self._post_to_channel(client, press, user, channel, answer_ts, target)
                outcome.done.append((via, target))
            except Exception as exc:
                log.warning("Escalating ranking %s to channel %s failed: %s", press.ranking_id, target, exc)
                outcome.failed.append((via, target, _error(exc), row))
        if group is not None:
            lines = [f"<!subteam^{group[0]}> <@{press.asker}> still needs help with this question."]
        elif outcome.done:
            lines = [f"<@{press.asker}>, I've asked for help with this question."]
        else:
            lines = [f"<@{press.asker}>, I couldn't ask for help with this question."]
        if user != press.asker:
            lines.append(f"(<@{user}> asked for help.)")
        for _, target in outcome.done:
            lines.append(f"I've passed it, with the answer and its sources, to <#{target}>; someone will follow up.")
        for _, target, error, _ in outcome.failed:
            lines.append(
                f"⚠️ I couldn't pass it to <#{target}> (Slack said `{blocks.escape(error)}`). "
                "An admin can fix that by inviting me there (/invite @ragbot); until then, ask in the channel."
            )
        try:
            client.chat_postMessage(channel=channel, thread_ts=thread_ts, text="\n".join(lines))
            if group is not None:
                outcome.done.insert(0, (USERGROUP, group[0]))
        except Exception as exc:
            log.warning(
                "Escalating ranking %s in the thread %s/%s failed: %s", press.ranking_id, channel, thread_ts, exc
            )
            if group is not None:
                outcome.failed.append((USERGROUP, group[0], _error(exc), group[1]))
            self._tell_presser(
                client,
                channel,
                user,
                thread_ts,
                f"I couldn't post in this thread (Slack said `{blocks.escape(_error(exc))}`), so nobody was told.",
            )
        return outcome

    def _post_to_channel(
        self, client: WebClient, press: _Press, user: str, channel: str, answer_ts: str, target: str
    ) -> None:
        """The question, the answer and its sources, as the asker saw them (without buttons), with a link to the
        thread when Slack gives one."""
        assert press.view is not None
        try:
            permalink = optional_text(client.chat_getPermalink(channel=channel, message_ts=answer_ts).get("permalink"))
        except Exception as exc:
            log.info("No permalink for %s/%s: %s", channel, answer_ts, exc)
            permalink = None
        asked = f"🙋 <@{press.asker}> still needs help with a question I answered in {_where(channel)}"
        if user != press.asker:
            asked += f" (<@{user}> asked for help)"
        if permalink:
            asked += f" · <{permalink.replace('|', '%7C').replace('>', '%3E')}|open the thread>"
        question = f"*Question:* {blocks.escape(press.question)}"
        header = [
            blocks.context_block(asked[: blocks.SECTION_LIMIT]),
            blocks.section_block(question[: blocks.SECTION_LIMIT]),
        ]
        first, *rest = blocks.answer_messages(press.view, actions="none")
        fallback = f"<@{press.asker}> still needs help: {blocks.escape(press.question)}"[: blocks.SECTION_LIMIT]
        for message in [blocks.SlackMessage(fallback, [*header, *first.blocks]), *rest]:
            client.chat_postMessage(
                channel=target, text=message.text, blocks=message.blocks[: blocks.MAX_BLOCKS], unfurl_links=False
            )

    @staticmethod
    def _replace_button(
        client: WebClient, body: dict[str, Any], channel: str, user: str, done: list[tuple[str, str]]
    ) -> None:
        """The pressed message with its button swapped for who escalated and where, so nobody presses again."""
        message = body.get("message")
        shown = message.get("blocks") if isinstance(message, dict) else None
        ts = message.get("ts") if isinstance(message, dict) else None
        if not isinstance(shown, list) or not isinstance(ts, str):
            return
        where = " and ".join(_target(via, target) for via, target in done)
        line = blocks.context_block(f"🙋 <@{user}> asked {where} for help."[: blocks.SECTION_LIMIT])
        replaced = [line if b.get("block_id") == blocks.ESCALATE_BLOCK_ID else b for b in shown if isinstance(b, dict)]
        try:
            client.chat_update(channel=channel, ts=ts, text=optional_text(message.get("text")) or "", blocks=replaced)
        except Exception as exc:  # the escalation stands; only the button stays
            log.warning("Could not replace the escalation button of %s/%s: %s", channel, ts, exc)

    @staticmethod
    def _tell_presser(client: WebClient, channel: str, user: str, thread_ts: str, text: str) -> None:
        try:
            client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, text=text)
        except Exception:
            log.exception("Could not tell %s about their escalation in %s", user, channel)
