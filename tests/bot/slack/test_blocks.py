"""Block Kit rendering within Slack's limits."""

from __future__ import annotations

from bot.answering import Citation
from bot.slack.blocks import (
    MARKDOWN_LIMIT,
    MAX_ANSWER_MESSAGES,
    MAX_BLOCKS,
    SECTION_LIMIT,
    AnswerView,
    answer_messages,
    replace_feedback_buttons,
    split_text,
    to_mrkdwn,
)
from tests.bot.slack.conftest import logged_candidate


def view(answer: str, **overrides) -> AnswerView:
    fields = {
        "ranking_id": 7,
        "answer": answer,
        "status": "ok",
        "sources": [Citation(1, "SSO <beta> & SAML", "Okta *setup*", "https://docs.example/sso?a=1&b=2", 0.91)],
        "preset": "sales",
        "preset_version": 3,
        "rerank": "ok",
    }
    return AnswerView(**(fields | overrides))


def answer_blocks(view: AnswerView) -> list[dict]:
    """The blocks of an answer that fits one message."""
    [message] = answer_messages(view)
    return message.blocks


def test_long_answers_are_split_into_messages_under_the_markdown_limit() -> None:
    answer = " ".join(f"Sentence number {i} explains **one more** detail of the setup." for i in range(500))
    messages = answer_messages(view(answer))
    markdown = [b["text"] for m in messages for b in m.blocks if b["type"] == "markdown"]
    assert 2 * MARKDOWN_LIMIT < len(answer) < 3 * MARKDOWN_LIMIT and len(messages) == len(markdown) == 3
    assert all(len(md) <= MARKDOWN_LIMIT for md in markdown)  # one markdown block a message: its total
    assert " ".join(markdown) == answer  # nothing lost, Markdown kept, cut between sentences
    assert all(md.endswith(".") for md in markdown)
    # the sources, the preset and the buttons come once, under the last piece
    assert [any(b["type"] == "context_actions" for b in m.blocks) for m in messages] == [False, False, True]
    assert all(m.blocks[0]["type"] == "markdown" for m in messages)


def test_an_enormous_answer_is_cut_after_the_last_message_and_says_so() -> None:
    messages = answer_messages(view("word " * 60_000))
    assert len(messages) == MAX_ANSWER_MESSAGES
    assert all(len(m.blocks) <= MAX_BLOCKS for m in messages)
    last = messages[-1].blocks
    assert last[-1]["type"] == "context_actions" and "was cut to fit" in str(last)
    assert "was cut to fit" not in str(messages[0].blocks)


def test_titles_are_escaped_and_links_are_the_documents_own() -> None:
    sections = [b["text"]["text"] for b in answer_blocks(view("See [1].")) if b["type"] == "section"]
    [sources] = [s for s in sections if s.startswith("*Sources")]
    line = sources.splitlines()[1]
    assert line == "[1] <https://docs.example/sso?a=1&b=2|SSO &lt;beta&gt; &amp; SAML › Okta *setup*> · rerank 0.91"


def test_a_path_source_is_shown_as_code_and_a_skipped_rerank_is_said() -> None:
    skipped = view(
        "x [1]", rerank="skipped: reranker unavailable", sources=[Citation(1, "Notes", "", "/kb/a.md", None)]
    )
    text = str(answer_blocks(skipped))
    assert "[1] Notes (`/kb/a.md`)" in text and "Reranking was skipped: reranker unavailable" in text


def source_lines(sources: list[Citation]) -> list[str]:
    sections = [
        b["text"]["text"] for b in answer_blocks(view("See [1] and [2].", sources=sources)) if b["type"] == "section"
    ]
    [listed] = [s for s in sections if s.startswith("*Sources")]
    return listed.splitlines()[1:]


def test_a_source_line_says_when_its_document_was_updated_by_date_only() -> None:
    sources = [
        Citation(1, "Refunds", "", "https://docs.example/refunds", 0.91, updated="2026-11-03T09:30:00+00:00"),
        Citation(2, "Notes", "", "/kb/a.md", None, updated="2026-11-04"),
    ]
    assert source_lines(sources) == [
        "[1] <https://docs.example/refunds|Refunds> · rerank 0.91 · updated 2026-11-03",
        "[2] Notes (`/kb/a.md`) · updated 2026-11-04",
    ]


def test_a_source_line_without_a_known_date_says_nothing_of_it() -> None:
    sources = [
        Citation(1, "Refunds", "", "https://docs.example/refunds", 0.91),
        Citation(2, "Notes", "", "/kb/a.md", None, updated="last Tuesday"),
    ]
    assert source_lines(sources) == [
        "[1] <https://docs.example/refunds|Refunds> · rerank 0.91",
        "[2] Notes (`/kb/a.md`)",
    ]


def test_markdown_from_an_llm_becomes_mrkdwn() -> None:
    assert to_mrkdwn("**Yes** see [the guide](https://d.example/x) & <ask> [1]") == (
        "*Yes* see <https://d.example/x|the guide> &amp; &lt;ask&gt; [1]"
    )


def test_split_text_prefers_paragraphs() -> None:
    assert split_text("a" * 10 + "\n\n" + "b" * 10, limit=15) == ["a" * 10, "b" * 10]


def test_feedback_buttons_are_replaced_by_a_thank_you() -> None:
    blocks = replace_feedback_buttons(answer_blocks(view("x [1]")), "U1", -1)
    assert not any(b["type"] == "context_actions" for b in blocks)
    assert blocks[-1]["elements"][0]["text"] == "👎 Thanks for the feedback, <@U1>!"


def test_the_text_fallback_and_the_markdown_keep_mentions_and_links_as_text() -> None:
    """Slack turns `<!channel>`, `<@U...>` and `<url|label>` into mentions and links in `text` (mrkdwn); the
    markdown block gets every `<` escaped too, whatever Slack makes of them there."""
    hostile = "Read this <!channel> <!here> <@U0BOSS> & <https://evil.example/login|the SSO guide> [1]"
    [message] = answer_messages(view(hostile))
    assert "<" not in message.text and ">" not in message.text
    assert message.text == (
        "Read this &lt;!channel&gt; &lt;!here&gt; &lt;@U0BOSS&gt; &amp; "
        "&lt;https://evil.example/login|the SSO guide&gt; [1]"
    )
    markdown = message.blocks[0]
    assert markdown["type"] == "markdown" and "<" not in markdown["text"]
    assert markdown["text"] == hostile.replace("<", "&lt;")
    first, second = answer_messages(view("<" * 5000))  # escaped, 20,000 characters: two messages
    assert len(first.text) == 4 * SECTION_LIMIT  # cut first, then escaped: no half entity
    markdown = [b["text"] for m in (first, second) for b in m.blocks if b["type"] == "markdown"]
    assert [len(md) for md in markdown] == [MARKDOWN_LIMIT, 4 * 5000 - MARKDOWN_LIMIT]


def test_a_view_rebuilt_from_the_log_lists_a_merged_section_once() -> None:
    """Overlapping chunks of one section share one citation number in the log: Slack lists that place once."""
    import store

    logged = logged_candidate

    log = store.RankingLog(
        id=9,
        answer="Set it up in Okta [1]. Test the login [2].",
        status="ok",
        preset_name="default",
        preset_version=1,
        rerank_status="ok",
        candidates=[logged(1, "Okta", 1), logged(2, "Okta", 1), logged(3, "Testing", 2), logged(4, "Okta", 1)],
    )
    assert [(s.n, s.section) for s in AnswerView.from_log(log).sources] == [(1, "Okta"), (2, "Testing")]
    log.status, log.answer = "no_answer", None
    assert [s.section for s in AnswerView.from_log(log).sources] == ["Okta", "Testing"]
