"""Answer writers: the extractive one, and the LLM one against a local server speaking the OpenAI chat API."""

from __future__ import annotations

import pytest

from bot.answering.writers import (
    ExtractiveAnswerer,
    LLMAnswerer,
    Passage,
    cited_numbers,
    number_by_first_citation,
    remove_dangling_citations,
)
from retrieval import Candidate
from tests.fake_openai import FakeOpenAI


def passage(n: int, text: str, title: str = "Doc") -> Passage:
    candidate = Candidate(f"p{n}", f"d{n}", title, f"https://docs.example/{n}", "", text, n, 0.5)
    return Passage(n, candidate, 0.9)


PASSAGES = [
    passage(1, "SSO is available on Business and Enterprise plans. Starter has no SSO. Prices are monthly."),
    passage(2, "SAML 2.0 works with Okta, Azure AD and Google Workspace. Setup takes ten minutes."),
    passage(3, "发票需要加盖发票专用章。普通发票可以电子开具。"),
]


def test_extractive_answer_picks_relevant_sentences_with_citations() -> None:
    answer = ExtractiveAnswerer(max_sentences=3).write("Which plans include SSO with Okta?", PASSAGES[:2])
    assert answer.writer == "extractive" and answer.cited == [1, 2]
    assert "SSO is available on Business and Enterprise plans. [1]" in answer.text
    assert "SAML 2.0 works with Okta, Azure AD and Google Workspace. [2]" in answer.text
    assert "Prices are monthly" not in answer.text


def test_extractive_answer_matches_chinese_by_character_bigrams() -> None:
    answer = ExtractiveAnswerer(max_sentences=1).write("发票要盖什么章？", PASSAGES)
    assert answer.text == "发票需要加盖发票专用章。 [3]" and answer.cited == [3]


def test_dangling_citations_are_removed() -> None:
    text = "Use SAML [1][7]. Okta is supported [2] , and [12] more."
    assert remove_dangling_citations(text, {1, 2}) == "Use SAML [1]. Okta is supported [2], and more."
    assert cited_numbers("a [2] b [1] c [2] d [9]", {1, 2}) == [1, 2]


def test_sources_are_renumbered_in_the_order_first_cited_without_gaps() -> None:
    text, order = number_by_first_citation("Okta [3][9]. SSO [2] and Okta again [3].", {1, 2, 3})
    assert (text, order) == ("Okta [1]. SSO [2] and Okta again [1].", [3, 2])
    assert number_by_first_citation("No sources here.", {1}) == ("No sources here.", [])


def test_llm_answer_sends_only_the_top_passages_and_drops_invented_citations(llm_server: str) -> None:
    writer = LLMAnswerer(llm_server, "qwen3-8b", api_key="sk-test", timeout=5)
    answer = writer.write("Can we do SSO with Okta?", PASSAGES[:2])
    assert answer.text == "SSO needs the Business plan [1]; Okta is supported [2]."
    assert answer.cited == [1, 2] and answer.writer == "llm:qwen3-8b"
    [request] = FakeOpenAI.requests
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer sk-test"
    body = request["body"]
    assert body["model"] == "qwen3-8b"
    user = body["messages"][-1]["content"]
    assert "[1] Doc\nSSO is available" in user and "[2] Doc\nSAML 2.0" in user and "发票" not in user
    assert user.endswith("Question: Can we do SSO with Okta?")


def test_llm_timeout_raises_so_the_pipeline_can_fall_back(llm_server: str) -> None:
    FakeOpenAI.delay = 3.0
    writer = LLMAnswerer(llm_server, "m", timeout=0.5)
    with pytest.raises(Exception, match=r"(?i)timed? ?out"):
        writer.write("q", PASSAGES[:1])


def test_extractive_answer_skips_code_tables_and_prefers_the_question_language() -> None:
    text = (
        "When you exceed the limit the API answers with HTTP 429.\n```\n"
        '{"error": "rate limit exceeded for this token"}\n```\n| Limit | 600 per minute rate limit |\n'
        "更多说明请参阅 API rate limit 文档。"
    )
    answer = ExtractiveAnswerer(max_sentences=1).write(
        "What happens when we exceed the rate limit?", [passage(1, text)]
    )
    assert answer.text == "When you exceed the limit the API answers with HTTP 429. [1]"


def test_a_table_row_is_quoted_under_its_column_headers() -> None:
    """A price list or a limits table is often the answer: its rows read as "Column: value" items."""
    text = (
        "Prices are per month.\n\n| Plan | Seats | Monthly price |\n| --- | --- | --- |\n"
        "| Team | 10 | $149 |\n| Scale | 250 | $2,400 |\n"
    )
    answer = ExtractiveAnswerer(max_sentences=1).write("What is the monthly price of Scale?", [passage(1, text)])
    assert answer.text == "Plan: Scale; Seats: 250; Monthly price: $2,400 [1]"
