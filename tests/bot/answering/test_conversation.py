"""A thread as a conversation, and a streamed answer's citations: the pure parts of issue 14's answering core.
`CitationStream` must show, piece by piece, the text `number_by_first_citation` makes of the whole answer (a
surface streams the one and then shows the other); the history budget must hold for every script."""

from __future__ import annotations

import itertools
import random
import re

import pytest

from bot.answering.conversation import Turn, approx_tokens, joined_question, recent_turns
from bot.answering.writers import CitationStream, number_by_first_citation


def streamed(pieces: list[str], valid: set[int]) -> tuple[list[str], list[int]]:
    """What a surface is shown for each piece (the held-back rest last), and the stream's citation order."""
    stream = CitationStream(valid)
    shown = [stream.feed(piece) for piece in pieces]
    shown.append(stream.finish())
    return shown, stream.order


def no_space(text: str) -> str:
    return re.sub(r"\s+", "", text)


def random_split(text: str, rng: random.Random) -> list[str]:
    """`text` cut at random places, single characters and empty pieces included."""
    cuts = sorted(rng.sample(range(len(text) + 1), k=min(len(text) + 1, rng.randint(1, 12))))
    edges = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(edges)]


# -- CitationStream ------------------------------------------------------------------------------------------------


def test_a_marker_split_across_pieces_is_held_until_complete() -> None:
    shown, order = streamed(["SSO needs Business ", "[", "3", "]", " and Okta", " [1", "]."], {1, 2, 3})
    assert shown == ["SSO needs Business ", "", "", "[1]", " and Okta", " ", "[2].", ""]
    assert order == [3, 1]


def test_a_two_digit_marker_split_after_its_first_digit() -> None:
    shown, order = streamed(["See [1", "2] then [", "2]"], {2, 12})
    assert "".join(shown) == "See [1] then [2]" and order == [12, 2]


def test_markers_that_point_at_no_passage_are_dropped() -> None:
    shown, order = streamed(["Okta [", "9][2] works", " [7", "]."], {1, 2})
    assert "".join(shown) == "Okta [1] works ." and order == [2]


def test_numbers_follow_the_order_of_first_citation_and_repeat() -> None:
    shown, order = streamed(["a [3] b [1] c [3] d [2][1]"], {1, 2, 3})
    assert shown[0] == "a [1] b [2] c [1] d [3][2]" and order == [3, 1, 2]


def test_brackets_that_are_not_markers_pass_through() -> None:
    """A held "[" that turns out to be a link or a three-digit number is shown as it came, not lost."""
    shown, _ = streamed(["See [", "the docs](https://x) and [", "123] and [1"], {1})
    assert "".join(shown) == "See [the docs](https://x) and [123] and [1"


ANSWERS = [
    "SSO needs the Business plan [2]; Okta is supported [1] [3]. Azure AD too [2][9].",
    "Export from Settings > Data [4]. Large exports arrive by e-mail [4][1], within a day [12] .",
    "发票需要加盖发票专用章[2]。电子发票也可以[1][2]，见 [5]。",
    "No sources here, only [brackets] and [ 1 ] and a trailing [",
    "[1][2][3][1] at the start, then [10] and [3] [99].",
]


@pytest.mark.parametrize("answer", ANSWERS)
def test_any_split_streams_the_text_the_whole_answer_gets(answer: str) -> None:
    valid = {1, 2, 3, 4, 5}
    whole, whole_order = number_by_first_citation(answer, valid)
    rng = random.Random(answer)
    for _ in range(40):
        pieces = random_split(answer, rng)
        shown, order = streamed(pieces, valid)
        assert no_space("".join(shown)) == no_space(whole), pieces
        assert order == whole_order


def test_random_answers_stream_as_numbered_whole() -> None:
    """Answers made of words, markers valid and not, stray brackets and digits: stream and whole agree."""
    rng = random.Random(14)
    words = ["SSO", "Okta", " ", ", ", ". ", "。", "发票", "\n"]
    tokens = [*words, "[1]", "[2]", "[3]", "[7]", "[12]", "[", "]", "1", "4"]
    for _ in range(300):
        answer = "".join(rng.choice(tokens) for _ in range(rng.randint(1, 30)))
        whole, whole_order = number_by_first_citation(answer, {1, 2, 3})
        shown, order = streamed(random_split(answer, rng), {1, 2, 3})
        assert no_space("".join(shown)) == no_space(whole), answer
        assert order == whole_order, answer


def test_a_marker_joined_by_dropping_an_invented_one_does_not_crash_numbering() -> None:
    """ "[[9]1]": dropping [9] leaves "[1]". Numbering dropped first and renumbered after, so it raised KeyError."""
    assert number_by_first_citation("See [[9]1] and [2].", {1, 2}) == ("See [1] and [1].", [2])
    assert number_by_first_citation("a [[9]9] b", {1}) == ("a [9] b", [])


# -- the conversation's budget -------------------------------------------------------------------------------------


def test_approx_tokens_counts_latin_text_four_characters_a_token() -> None:
    assert approx_tokens("") == 0
    assert approx_tokens("abcd") == 1 and approx_tokens("abcde") == 2
    assert approx_tokens("a" * 400) == 100


@pytest.mark.parametrize(
    "text",
    [
        "发票需要盖什么章",  # Chinese
        "請求書に印鑑は必要ですか",  # Japanese: kanji and kana
        "シングルサインオン",  # katakana only
        "요금제에서사용할수있나요",  # Korean Hangul
        "，。！？「」",  # CJK punctuation
    ],
)
def test_approx_tokens_counts_each_cjk_character_as_a_token(text: str) -> None:
    assert approx_tokens(text) == len(text)


def test_approx_tokens_adds_cjk_and_latin_parts() -> None:
    assert approx_tokens("SSO を設定する") == 5 + (4 + 3) // 4  # five CJK characters, "SSO " in Latin


def test_recent_turns_keeps_the_latest_turns_that_fit_oldest_first() -> None:
    turns = [Turn("user", "a" * 40), Turn("assistant", "b" * 40), Turn("user", "c" * 40), Turn("assistant", "d" * 40)]
    assert recent_turns(turns, max_tokens=40) == turns  # 10 tokens each
    assert recent_turns(turns, max_tokens=39) == turns[1:]
    assert recent_turns(turns, max_tokens=29) == turns[2:]
    assert recent_turns(turns, max_tokens=9) == []
    assert recent_turns([], max_tokens=100) == []


def test_recent_turns_stops_at_the_first_turn_that_does_not_fit() -> None:
    """A long old turn ends the history: the short ones before it are not pulled across the gap."""
    turns = [Turn("user", "short"), Turn("assistant", "x" * 400), Turn("user", "latest")]
    assert recent_turns(turns, max_tokens=20) == [Turn("user", "latest")]


def test_recent_turns_budgets_a_chinese_thread_by_character() -> None:
    turns = [Turn("user", "发票需要盖什么章"), Turn("assistant", "需要加盖发票专用章"), Turn("user", "电子发票呢")]
    assert recent_turns(turns, max_tokens=14) == turns[1:]  # 9 + 5: the first turn's 8 would pass 14
    assert recent_turns(turns, max_tokens=22) == turns


def test_joined_question_joins_the_user_turns_only_oldest_first() -> None:
    history = [Turn("user", " Which plan has SSO? "), Turn("assistant", "Business [1]."), Turn("user", "  ")]
    assert joined_question(history, " And Okta? ", 4000) == "Which plan has SSO?\nAnd Okta?"


def test_joined_question_leaves_out_the_oldest_turns_past_the_limit() -> None:
    history = [Turn("user", "o" * 50), Turn("user", "m" * 20), Turn("assistant", "a" * 500)]
    assert joined_question(history, "q" * 10, 31) == "m" * 20 + "\n" + "q" * 10  # exactly 31 characters
    assert joined_question(history, "q" * 10, 30) == "q" * 10
    assert len(joined_question(history, "q" * 10, 82)) == 82


def test_joined_question_without_history_is_the_question() -> None:
    assert joined_question([], "How do I export?", 10) == "How do I export?"
