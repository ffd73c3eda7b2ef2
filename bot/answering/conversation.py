"""A thread as a conversation: the turns before a follow-up, within a token budget, and the standalone question
a follow-up is searched as when no LLM can rewrite it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

# Scripts a chat model's tokenizer spends about a token a character on: CJK ideographs and punctuation, Japanese kana,
# Korean Hangul (syllables and jamo), full-width forms. Kana and Hangul counted four to a token made a Japanese or
# Korean thread look four times shorter than it is, and overran the history budget.
_CJK = re.compile(
    r"[\u1100-\u11ff\u3000-\u303f\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    r"\uac00-\ud7af\uff00-\uffef]"
)

# The turns a follow-up carries by default: a few exchanges, well inside a small model's context.
DEFAULT_HISTORY_TOKENS = 2000


@dataclass(frozen=True)
class Turn:
    """One message of a conversation: the user's, or ragbot's own answer (`assistant`)."""

    role: Literal["user", "assistant"]
    text: str


def approx_tokens(text: str) -> int:
    """About how many tokens `text` is for a chat model: a CJK character (Chinese, Japanese kana, Korean Hangul) is
    about one, other text about four characters a token. Good enough for a budget; no tokenizer download."""
    cjk = len(_CJK.findall(text))
    return cjk + (len(text) - cjk + 3) // 4


def recent_turns(turns: Sequence[Turn], max_tokens: int = DEFAULT_HISTORY_TOKENS) -> list[Turn]:
    """The latest turns whose text fits in `max_tokens` together, oldest first (a turn that does not fit whole
    ends the history: the earlier ones are dropped)."""
    kept: list[Turn] = []
    used = 0
    for turn in reversed(turns):
        cost = approx_tokens(turn.text)
        if used + cost > max_tokens:
            break
        kept.append(turn)
        used += cost
    return kept[::-1]


def joined_question(history: Sequence[Turn], question: str, max_chars: int) -> str:
    """A follow-up searched without an LLM: the earlier user turns, then the follow-up, one a line; the oldest
    turns are left out where the whole would pass `max_chars`."""
    lines = [question.strip()]
    for turn in reversed(history):
        text = turn.text.strip()
        if turn.role != "user" or not text:
            continue
        if sum(len(line) + 1 for line in lines) + len(text) > max_chars:
            break
        lines.insert(0, text)
    return "\n".join(lines)
