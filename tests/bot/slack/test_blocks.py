"""Block Kit rendering within Slack's limits."""

from __future__ import annotations

from bot.answering import Citation
from bot.slack.blocks import (
    MAX_BLOCKS,
    SECTION_LIMIT,
    AnswerView,
    answer_blocks,
    answer_text,
    replace_feedback_buttons,
    split_text,
    to_mrkdwn,
)


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


def test_long_answers_are_split_into_sections_under_the_limit() -> None:
    answer = " ".join(f"Sentence number {i} explains one more detail of the setup." for i in range(400))
    blocks = answer_blocks(view(answer))
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert len(answer) > 3 * SECTION_LIMIT and len(sections) >= 5
    assert all(len(s) <= SECTION_LIMIT for s in sections)
    assert " ".join(sections[:-1]) == answer  # nothing lost, cut between sentences (last one: Sources)
    assert all(s.endswith(".") for s in sections[:-1])


def test_an_enormous_answer_still_fits_in_fifty_blocks_with_sources_and_buttons() -> None:
    blocks = answer_blocks(view("word " * 60_000))
    assert len(blocks) == MAX_BLOCKS
    assert blocks[-1]["type"] == "actions" and "was cut to fit" in str(blocks)


def test_titles_are_escaped_and_links_are_the_documents_own() -> None:
    [sources] = [b for b in answer_blocks(view("See [1].")) if b.get("text", {}).get("text", "").startswith("*Sources")]
    line = sources["text"]["text"].splitlines()[1]
    assert line == "[1] <https://docs.example/sso?a=1&b=2|SSO &lt;beta&gt; &amp; SAML › Okta *setup*> · rerank 0.91"


def test_a_path_source_is_shown_as_code_and_a_skipped_rerank_is_said() -> None:
    skipped = view(
        "x [1]", rerank="skipped: reranker unavailable", sources=[Citation(1, "Notes", "", "/kb/a.md", None)]
    )
    text = str(answer_blocks(skipped))
    assert "[1] Notes (`/kb/a.md`)" in text and "Reranking was skipped: reranker unavailable" in text


def test_markdown_from_an_llm_becomes_mrkdwn() -> None:
    assert to_mrkdwn("**Yes** see [the guide](https://d.example/x) & <ask> [1]") == (
        "*Yes* see <https://d.example/x|the guide> &amp; &lt;ask&gt; [1]"
    )


def test_split_text_prefers_paragraphs() -> None:
    assert split_text("a" * 10 + "\n\n" + "b" * 10, limit=15) == ["a" * 10, "b" * 10]


def test_feedback_buttons_are_replaced_by_a_thank_you() -> None:
    blocks = replace_feedback_buttons(answer_blocks(view("x [1]")), "U1", -1)
    assert not any(b["type"] == "actions" for b in blocks)
    assert blocks[-1]["elements"][0]["text"] == "👎 Thanks for the feedback, <@U1>!"


def test_the_text_fallback_is_escaped_like_the_blocks() -> None:
    """Slack turns `<!channel>`, `<@U...>` and `<url|label>` into mentions and links in `text` too."""
    hostile = "Read this <!channel> <!here> <@U0BOSS> & <https://evil.example/login|the SSO guide> [1]"
    text = answer_text(view(hostile))
    assert "<" not in text and ">" not in text
    assert text == (
        "Read this &lt;!channel&gt; &lt;!here&gt; &lt;@U0BOSS&gt; &amp; "
        "&lt;https://evil.example/login|the SSO guide&gt; [1]"
    )
    section = answer_blocks(view(hostile))[0]["text"]["text"]
    assert section == text  # the same escaping as the blocks
    assert len(answer_text(view("<" * 10_000))) == 4 * SECTION_LIMIT  # cut first, then escaped: no half entity


def test_a_view_rebuilt_from_the_log_lists_a_merged_section_once() -> None:
    """Overlapping chunks of one section share one citation number in the log: Slack lists that place once."""
    import store

    def logged(rank: int, section: str, citation: int | None, used: bool = True) -> store.LoggedCandidate:
        return store.LoggedCandidate(
            point_id=f"p{rank}",
            doc_id="sso.md",
            title="SSO",
            source="https://docs.example/sso",
            section=section,
            text="…",
            retrieval_rank=rank,
            retrieval_score=0.5,
            rerank_rank=rank,
            rerank_score=1 - rank / 10,
            used=used,
            citation=citation,
        )

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
