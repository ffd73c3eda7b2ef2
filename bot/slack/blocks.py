"""Block Kit rendering of answers, within Slack's limits: the answer in `markdown` blocks (standard Markdown, which
Slack renders; 12,000 characters in total a message), sources in mrkdwn sections (3,000 characters each), 👍/👎 as
Slack's own `feedback_buttons`, at most 50 blocks a message."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import store
from bot.answering import AnswerStatus, AskResult, Citation, RerankStatus
from bot.answering.passages import place_of
from bot.slack.inbound import unread_files_note

SECTION_LIMIT = 3000
MARKDOWN_LIMIT = 12_000  # all markdown blocks of one message together
MAX_BLOCKS = 50
MAX_ANSWER_MESSAGES = 3  # an answer past 3 x 12,000 characters is cut (a slash command's response_url takes 5 posts)
FEEDBACK_BLOCK_ID = "ragbot_feedback"
ACTION_FEEDBACK = "ragbot_feedback"  # the feedback_buttons element; its buttons' values are `<vote>:<ranking id>`
VOTES = {"helpful": +1, "not_helpful": -1}
# The buttons of answers posted before `feedback_buttons` (values: the ranking id): still answered.
ACTION_HELPFUL = "ragbot_feedback_up"
ACTION_NOT_HELPFUL = "ragbot_feedback_down"
ACTION_SHARE = "ragbot_share"
ACTION_ESCALATE = "ragbot_escalate"  # "Still need help?" (bot.slack.escalation); its value is the ranking id
ESCALATE_BLOCK_ID = "ragbot_escalate"
COMMENT_MODAL = "ragbot_feedback_comment"
COMMENT_MAX_CHARS = 2000

_MD_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_MD_BOLD = re.compile(r"\*\*(.+?)\*\*")
UNCITED_HEADING = "*The answer cites no source; these are the passages it was written from:*"
CUT_NOTE = "_The answer was cut to fit in Slack; the full text is in the log._"


@dataclass(frozen=True)
class SlackMessage:
    """One message to post: its `text` fallback (notifications, screen readers; Slack reads it as mrkdwn) and its
    blocks."""

    text: str
    blocks: list[dict[str, Any]]


@dataclass(frozen=True)
class AnswerView:
    """What a Slack answer shows; built from an answer or from a logged ranking."""

    ranking_id: int | None
    answer: str
    status: AnswerStatus
    sources: list[Citation]
    preset: str
    preset_version: int
    rerank: RerankStatus
    note: str | None = None
    uncited: bool = False  # an answer that cites none of its sources: they are what it was written from
    escalates: bool = False  # its preset names people to hand the question to: "Still need help?" is offered
    unread_files: tuple[str, ...] = ()  # the question's attachments: the answer says it did not read them

    def __post_init__(self) -> None:  # a view may be built from logged text: give it the typed statuses
        object.__setattr__(self, "status", AnswerStatus(self.status))
        object.__setattr__(self, "rerank", RerankStatus(self.rerank))

    @classmethod
    def from_result(cls, result: AskResult, unread_files: Sequence[str] | None = None) -> AnswerView:
        return cls(
            ranking_id=result.ranking_id,
            answer=result.answer,
            status=result.status,
            sources=list(result.citations),
            preset=result.preset.name,
            preset_version=result.preset.version,
            rerank=result.rerank,
            note=result.note,
            uncited=result.uncited,
            escalates=bool(result.preset.escalation_usergroup or result.preset.escalation_channel),
            unread_files=tuple(unread_files or ()),
        )

    @classmethod
    def from_log(cls, log: store.RankingLog) -> AnswerView:
        status = AnswerStatus(log.status)
        # Best first: the merged chunks of one section share a citation number, and its best chunk speaks for it.
        ranked = sorted(log.candidates, key=lambda c: c.rerank_rank or c.retrieval_rank)
        uncited = False
        if status is AnswerStatus.OK:
            used: dict[int, store.LoggedCandidate] = {}
            for c in ranked:
                if c.used and c.citation:
                    used.setdefault(c.citation, c)
            cited = {n: c for n, c in used.items() if f"[{n}]" in (log.answer or "")}
            uncited = bool(used) and not cited  # then the answer was written from all it used (see AskResult)
            chosen = [(cited or used)[n] for n in sorted(cited or used)]
            sources = [Citation(c.citation, c.title, c.section, c.source, c.rerank_score) for c in chosen]
        else:
            places: dict[tuple[str, str], store.LoggedCandidate] = {}
            for c in ranked:  # the closest places, not one section's overlapping chunks
                places.setdefault(place_of(c), c)
            best = list(places.values())[:3]
            sources = [Citation(i, c.title, c.section, c.source, c.rerank_score) for i, c in enumerate(best, 1)]
        return cls(
            ranking_id=log.id,
            answer=log.answer or "",
            status=status,
            sources=sources,
            preset=log.preset_name,
            preset_version=log.preset_version,
            rerank=log.rerank_status,
            note=log.error,
            uncited=uncited,
            # the preset as it is now (None once deleted): the button is only offered where pressing it can work
            escalates=log.preset is not None and bool(log.preset.escalation_usergroup or log.preset.escalation_channel),
        )


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: &, < and > are control characters (links, mentions)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_mrkdwn(text: str) -> str:
    """Answer text (Markdown from an LLM, or plain) as safe Slack mrkdwn, for the surfaces that speak only mrkdwn
    (a message's `text` fallback): escaped, with Markdown's links and bold in mrkdwn's syntax."""
    text = escape(text)
    text = _MD_LINK.sub(lambda m: f"<{m.group(2)}|{m.group(1).replace('|', '¦')}>", text)
    return _MD_BOLD.sub(r"*\1*", text)


def markdown_text(text: str) -> str:
    """Answer text for a `markdown` block: standard Markdown stays as it is; every `<` is escaped, so a passage's
    `<!channel>`, `<@U...>` or `<https://...|friendly words>` stays text in whatever way Slack reads it."""
    return text.replace("<", "&lt;")


def split_text(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Pieces under `limit`, cut at paragraph, line, sentence or word ends where possible."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        # The strongest boundary in the second half of the window: paragraph, line, sentence, word.
        ends = (window.rfind(sep) + len(sep.rstrip(" ") or sep) for sep in ("\n\n", "\n", ". ", "。", " "))
        cut = next((end for end in ends if end > limit // 2), limit)
        pieces.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    if rest:
        pieces.append(rest)
    return pieces


def _answer_pieces(text: str) -> list[tuple[str, str]]:
    """The answer as (text, markdown) pieces, each markdown piece within one message's markdown limit (escaping
    can make a piece up to four times longer: such a piece is cut smaller)."""
    pieces: list[tuple[str, str]] = []
    for piece in split_text(text, MARKDOWN_LIMIT):
        if len(markdown_text(piece)) <= MARKDOWN_LIMIT:
            pieces.append((piece, markdown_text(piece)))
        else:
            pieces.extend((p, markdown_text(p)) for p in split_text(piece, MARKDOWN_LIMIT // 4))
    return pieces


def _markdown(text: str) -> dict[str, Any]:
    return {"type": "markdown", "text": text}


def section_block(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def context_block(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _source_line(source: Citation) -> str:
    title = escape(source.title + (f" › {source.section}" if source.section else ""))
    details = f" · rerank {source.score:.2f}" if source.score is not None else ""
    if source.updated_date:
        details += f" · updated {source.updated_date}"
    if source.source.startswith(("http://", "https://")):
        url = source.source.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C")
        return f"[{source.n}] <{url}|{title}>{details}"
    return f"[{source.n}] {title} (`{escape(source.source)}`){details}"


def _feedback_button(emoji: str, label: str, vote: str, ranking_id: int) -> dict[str, Any]:
    return {
        "text": {"type": "plain_text", "text": emoji},
        "accessibility_label": label,
        "value": f"{vote}:{ranking_id}",
    }


def feedback_actions(ranking_id: int) -> dict[str, Any]:
    """Slack's own 👍/👎: a `feedback_buttons` element in a `context_actions` block. Both buttons share one
    action id; the pressed one's value says which vote it is and for which ranking."""
    return {
        "type": "context_actions",
        "block_id": FEEDBACK_BLOCK_ID,
        "elements": [
            {
                "type": "feedback_buttons",
                "action_id": ACTION_FEEDBACK,
                "positive_button": _feedback_button("👍", "This answer was helpful", "helpful", ranking_id),
                "negative_button": _feedback_button("👎", "This answer was not helpful", "not_helpful", ranking_id),
            }
        ],
    }


def share_actions(ranking_id: int) -> dict[str, Any]:
    return {
        "type": "actions",
        "block_id": "ragbot_share",
        "elements": [
            {
                "type": "button",
                "action_id": ACTION_SHARE,
                "text": {"type": "plain_text", "text": "Share in channel", "emoji": True},
                "value": str(ranking_id),
                "style": "primary",
            }
        ],
    }


def escalate_actions(ranking_id: int) -> dict[str, Any]:
    """The "Still need help?" button: hands the question to the preset's people (bot.slack.escalation)."""
    return {
        "type": "actions",
        "block_id": ESCALATE_BLOCK_ID,
        "elements": [
            {
                "type": "button",
                "action_id": ACTION_ESCALATE,
                "text": {"type": "plain_text", "text": "Still need help?", "emoji": True},
                "value": str(ranking_id),
            }
        ],
    }


def _tail(view: AnswerView, actions: str) -> list[dict[str, Any]]:
    """What follows the answer in its last message: sources, preset, note, and feedback (or share) buttons."""
    tail: list[dict[str, Any]] = []
    if view.sources:
        if view.status is not AnswerStatus.OK:
            heading = "*Closest passages* (not used for an answer)"
        else:
            heading = UNCITED_HEADING if view.uncited else "*Sources*"
        lines = [_source_line(s) for s in view.sources]
        if not view.rerank.ok:
            lines.append(f"⚠️ Reranking was {escape(view.rerank)}; these are in retrieval order.")
        sections = [section_block(piece) for piece in split_text(heading + "\n" + "\n".join(lines))]
        tail.extend(sections[: MAX_BLOCKS - 8])  # room for the answer, its notes, the preset and the buttons
    meta = f"Preset *{escape(view.preset)}* (v{view.preset_version})"
    if view.ranking_id is not None:
        meta += f" · ref R-{view.ranking_id}"
    tail.append(context_block(meta))
    if view.note:
        tail.append(context_block(f"ℹ️ {escape(view.note)}"[:SECTION_LIMIT]))
    if view.unread_files:
        tail.append(context_block(escape(unread_files_note(list(view.unread_files)))[:SECTION_LIMIT]))
    if view.ranking_id is not None and actions == "feedback":
        tail.append(feedback_actions(view.ranking_id))
        if view.escalates:  # not on ephemeral ("share") answers: only the asker sees those
            tail.append(escalate_actions(view.ranking_id))
    elif view.ranking_id is not None and actions == "share":
        tail.append(share_actions(view.ranking_id))
    return tail


def answer_messages(view: AnswerView, actions: str = "feedback") -> list[SlackMessage]:
    """The answer as Slack messages, posted in order: one, or several when the answer passes a message's
    markdown limit (at most `MAX_ANSWER_MESSAGES`, then cut, and said). The last one carries the sources, the
    preset and the feedback (or share) buttons. Each message's `text` is its piece of the answer in mrkdwn."""
    pieces = _answer_pieces(view.answer) or [("(no answer)", "_(no answer)_")]
    cut = len(pieces) > MAX_ANSWER_MESSAGES
    pieces = pieces[:MAX_ANSWER_MESSAGES]
    messages = [SlackMessage(to_mrkdwn(text[:SECTION_LIMIT]), [_markdown(md)]) for text, md in pieces]
    last = messages[-1]
    notes = [context_block(CUT_NOTE)] if cut else []
    messages[-1] = SlackMessage(last.text, [*last.blocks, *notes, *_tail(view, actions)])
    return messages


def answer_tail(view: AnswerView, actions: str = "feedback") -> list[dict[str, Any]]:
    """The blocks a streamed answer's message ends with (its text was streamed): sources, preset, note, buttons."""
    return _tail(view, actions)


def shared_answer_messages(view: AnswerView, user: str, question: str) -> list[SlackMessage]:
    """An answer shared from a slash command into the channel, with who asked what above it."""
    asked = context_block(f"<@{user}> asked: {escape(question)}"[:SECTION_LIMIT])
    first, *rest = answer_messages(view)
    return [SlackMessage(first.text, [asked, *first.blocks][:MAX_BLOCKS]), *rest]


def thanks_block(user: str, value: int) -> dict[str, Any]:
    emoji = "👍" if value > 0 else "👎"
    return context_block(f"{emoji} Thanks for the feedback, <@{user}>!")


def replace_feedback_buttons(blocks: list[dict[str, Any]], user: str, value: int) -> list[dict[str, Any]]:
    """The message's blocks with the buttons swapped for a thank-you line, so nobody votes twice."""
    return [thanks_block(user, value) if b.get("block_id") == FEEDBACK_BLOCK_ID else b for b in blocks]


def comment_modal(feedback_id: int) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": COMMENT_MODAL,
        "private_metadata": json.dumps({"feedback_id": feedback_id}),
        "title": {"type": "plain_text", "text": "What was wrong?"},
        "submit": {"type": "plain_text", "text": "Send"},
        "close": {"type": "plain_text", "text": "Skip"},
        "blocks": [
            {
                "type": "input",
                "block_id": "comment",
                "optional": True,
                "label": {"type": "plain_text", "text": "Tell the team what the answer missed (optional)"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "text",
                    "multiline": True,
                    "max_length": COMMENT_MAX_CHARS,
                },
            }
        ],
    }


def error_text(reference: str) -> str:
    return (
        "Sorry, something went wrong while I was looking for an answer. "
        f"The team can look it up with reference *{reference}*. Please try again in a moment."
    )
