"""Block Kit rendering of answers, within Slack's limits (3,000 characters a section, 50 blocks a message)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import store
from bot.answering import AnswerStatus, AskResult, Citation, RerankStatus
from bot.answering.passages import place_of

SECTION_LIMIT = 3000
MAX_BLOCKS = 50
FEEDBACK_BLOCK_ID = "ragbot_feedback"
ACTION_HELPFUL = "ragbot_feedback_up"
ACTION_NOT_HELPFUL = "ragbot_feedback_down"
ACTION_SHARE = "ragbot_share"
COMMENT_MODAL = "ragbot_feedback_comment"
COMMENT_MAX_CHARS = 2000

_MD_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_MD_BOLD = re.compile(r"\*\*(.+?)\*\*")


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

    def __post_init__(self) -> None:  # a view may be built from logged text: give it the typed statuses
        object.__setattr__(self, "status", AnswerStatus(self.status))
        object.__setattr__(self, "rerank", RerankStatus(self.rerank))

    @classmethod
    def from_result(cls, result: AskResult) -> AnswerView:
        return cls(
            ranking_id=result.ranking_id,
            answer=result.answer,
            status=result.status,
            sources=list(result.citations),
            preset=result.preset.name,
            preset_version=result.preset.version,
            rerank=result.rerank,
            note=result.note,
        )

    @classmethod
    def from_log(cls, log: store.RankingLog) -> AnswerView:
        status = AnswerStatus(log.status)
        # Best first: the merged chunks of one section share a citation number, and its best chunk speaks for it.
        ranked = sorted(log.candidates, key=lambda c: c.rerank_rank or c.retrieval_rank)
        if status is AnswerStatus.OK:
            cited: dict[int, store.LoggedCandidate] = {}
            for c in ranked:
                if c.used and c.citation and f"[{c.citation}]" in (log.answer or ""):
                    cited.setdefault(c.citation, c)
            chosen = [cited[n] for n in sorted(cited)]
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
        )


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: &, < and > are control characters (links, mentions)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_mrkdwn(text: str) -> str:
    """Answer text (Markdown from an LLM, or plain) as safe Slack mrkdwn."""
    text = escape(text)
    text = _MD_LINK.sub(lambda m: f"<{m.group(2)}|{m.group(1).replace('|', '¦')}>", text)
    return _MD_BOLD.sub(r"*\1*", text)


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


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _source_line(source: Citation) -> str:
    title = escape(source.title + (f" › {source.section}" if source.section else ""))
    score = f" · rerank {source.score:.2f}" if source.score is not None else ""
    if source.source.startswith(("http://", "https://")):
        url = source.source.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C")
        return f"[{source.n}] <{url}|{title}>{score}"
    return f"[{source.n}] {title} (`{escape(source.source)}`){score}"


def feedback_actions(ranking_id: int) -> dict[str, Any]:
    value = str(ranking_id)
    return {
        "type": "actions",
        "block_id": FEEDBACK_BLOCK_ID,
        "elements": [
            {
                "type": "button",
                "action_id": ACTION_HELPFUL,
                "text": {"type": "plain_text", "text": "👍 Helpful", "emoji": True},
                "value": value,
            },
            {
                "type": "button",
                "action_id": ACTION_NOT_HELPFUL,
                "text": {"type": "plain_text", "text": "👎 Not helpful", "emoji": True},
                "value": value,
            },
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


def answer_blocks(view: AnswerView, actions: str = "feedback") -> list[dict[str, Any]]:
    """The answer, its sources, the preset, and feedback (or share) buttons; at most 50 blocks."""
    tail: list[dict[str, Any]] = []
    if view.sources:
        heading = "*Sources*" if view.status is AnswerStatus.OK else "*Closest passages* (not used for an answer)"
        lines = [_source_line(s) for s in view.sources]
        if not view.rerank.ok:
            lines.append(f"⚠️ Reranking was {escape(view.rerank)}; these are in retrieval order.")
        tail.extend(_section(piece) for piece in split_text(heading + "\n" + "\n".join(lines)))
    meta = f"Preset *{escape(view.preset)}* (v{view.preset_version})"
    if view.ranking_id is not None:
        meta += f" · ref R-{view.ranking_id}"
    tail.append(_context(meta))
    if view.note:
        tail.append(_context(f"ℹ️ {escape(view.note)}"[:SECTION_LIMIT]))
    if view.ranking_id is not None and actions == "feedback":
        tail.append(feedback_actions(view.ranking_id))
    elif view.ranking_id is not None and actions == "share":
        tail.append(share_actions(view.ranking_id))

    room = MAX_BLOCKS - len(tail)
    body = [_section(piece) for piece in split_text(to_mrkdwn(view.answer) or "_(no answer)_")]
    if len(body) > room:
        body = [*body[: room - 1], _context("_The answer was cut to fit in Slack; the full text is in the log._")]
    return body + tail


def shared_answer_blocks(view: AnswerView, user: str, question: str) -> list[dict[str, Any]]:
    """An answer shared from a slash command into the channel, with who asked what."""
    asked = _context(f"<@{user}> asked: {escape(question)}"[:SECTION_LIMIT])
    return [asked, *answer_blocks(view)[: MAX_BLOCKS - 1]]


def answer_text(view: AnswerView) -> str:
    """The fallback text (notifications, screen readers), escaped like the blocks: Slack reads `<!channel>`,
    `<@U...>` and `<https://...|...>` in it too, and documents must not mention or link anyone through it."""
    return escape(view.answer[:SECTION_LIMIT])


def thanks_block(user: str, value: int) -> dict[str, Any]:
    emoji = "👍" if value > 0 else "👎"
    return _context(f"{emoji} Thanks for the feedback, <@{user}>!")


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
