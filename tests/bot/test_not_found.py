"""Honest "not found": a question the knowledge base does not address gets `no_answer` with the closest passages,
with or without a reranker; questions it does address are still answered. Real pipeline: the sample knowledge
base in an embedded Qdrant Edge store, the bundled embedder, BM25, SQLite (fixtures in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

import store
from bot.answering import AnswerStatus, Candidate
from bot.answering.relevance import RelevanceFloors, term_match
from bot.app import Components
from bot.settings import Settings
from retrieval.lexical import LexicalEncoder


@pytest.fixture
def no_reranker(components, tmp_path: Path):
    """The pipeline with a reranker that cannot load: answers come in retrieval order."""
    components.settings.rerank_model = str(tmp_path / "no-such-model")
    return components


def test_an_off_topic_question_is_not_found_and_lists_the_closest_passages(no_reranker) -> None:
    result = no_reranker.answers.ask("What is the capital of France?")
    assert not result.rerank.ok
    assert result.status is AnswerStatus.NO_ANSWER
    assert "could not find" in result.answer and "embedding similarity to the question is 0." in result.answer
    assert "rerank score" not in result.answer  # no reranker ran: the message says what was measured instead
    assert len(result.citations) == result.preset.top_n and not any(rc.used for rc in result.candidates)
    with no_reranker.sessions() as session:
        assert session.get(store.RankingLog, result.ranking_id).status == "no_answer"


def test_an_off_topic_question_in_chinese_is_not_found_by_its_terms(no_reranker) -> None:
    result = no_reranker.answers.ask("法国的首都是哪里？")
    assert result.status is AnswerStatus.NO_ANSWER
    assert "of the question's terms" in result.answer and result.citations


@pytest.mark.parametrize(
    "question",
    [
        "Can we integrate single sign-on for this customer?",
        "What is the API rate limit on the Business plan?",
        "发票需要盖什么章？",
        "如何导出全部数据？",
    ],
)
def test_questions_the_knowledge_base_addresses_are_answered(no_reranker, question: str) -> None:
    result = no_reranker.answers.ask(question)
    assert result.status is AnswerStatus.OK, result.answer
    assert result.citations and any(rc.used for rc in result.candidates)


def test_with_the_reranker_and_no_min_score_the_retrieval_floor_still_applies(components) -> None:
    off_topic = components.answers.ask("What is the capital of France?")
    assert off_topic.rerank.ok and off_topic.preset.min_score == 0
    assert off_topic.status is AnswerStatus.NO_ANSWER and "embedding similarity" in off_topic.answer
    assert components.answers.ask("How do I fix SAML-401 signature validation failed?").status is AnswerStatus.OK
    # Chinese is judged by its terms in retrieval order, whatever order the (random-weight) reranker gives.
    assert components.answers.ask("发票需要盖什么章？").status is AnswerStatus.OK


def test_a_preset_min_score_lets_the_reranker_decide(components) -> None:
    with components.sessions.begin() as session:
        store.default_preset(session).min_score = 0.001  # below any score the tiny reranker gives
    result = components.answers.ask("What is the capital of France?")
    assert result.rerank.ok and result.status is AnswerStatus.OK


def test_a_lexical_only_preset_judges_english_by_its_terms(no_reranker) -> None:
    with no_reranker.sessions.begin() as session:
        store.default_preset(session).retrieval_mode = "lexical"
    off_topic = no_reranker.answers.ask("Which plan suits a vegetarian diet?")  # "plan" alone matches
    assert off_topic.status is AnswerStatus.NO_ANSWER and "of the question's terms" in off_topic.answer
    assert no_reranker.answers.ask("What is the API rate limit on the Business plan?").status is AnswerStatus.OK


def test_a_floor_of_zero_turns_the_gate_off(env, embedder, monkeypatch) -> None:
    monkeypatch.setenv("RERANK_MODEL", str(env / "no-such-model"))
    monkeypatch.setenv("RELEVANCE_MIN_SIMILARITY", "0")
    parts = Components(Settings(), embedder=embedder)
    try:
        assert parts.answers.ask("What is the capital of France?").status is AnswerStatus.OK
    finally:
        parts.close()


def test_the_settings_defaults_are_the_calibrated_floors() -> None:
    fields = Settings.model_fields
    defaults = RelevanceFloors()
    assert fields["relevance_min_similarity"].default == defaults.dense > 0
    assert fields["relevance_min_term_match"].default == defaults.terms > 0


def passage(text: str) -> Candidate:
    return Candidate("p", "d", "", "https://docs.example/d", "", text, 1, 1.0)


def test_term_match_is_the_best_passages_share_of_the_questions_terms() -> None:
    lexical = LexicalEncoder()
    found = [passage("Invoices need the company seal."), passage("发票需要加盖发票专用章。")]
    assert term_match("发票需要盖什么章？", found, lexical) >= 0.5
    assert term_match("法国的首都是哪里？", found, lexical) == 0.0
    assert term_match("What is the capital of France?", [], lexical) == 0.0
