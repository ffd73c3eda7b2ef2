"""The answer service with fakes of its typed collaborators (a retriever, a reranker, an answer writer) over a
real SQLite database: what it returns, what it logs, and how each failure comes back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import store
from bot.answering import (
    AnswerFailed,
    AnswerService,
    AnswerStatus,
    CompareError,
    ExtractiveAnswerer,
    Presets,
    QuestionError,
    RankingRecorder,
    RerankerSlot,
    RerankerUnavailableError,
    RerankRequiredError,
)
from rerank import DEFAULT_INSTRUCTION, RerankerLoadError
from retrieval import Candidate, RetrievalResult


def candidate(name: str, rank: int, text: str | None = None) -> Candidate:
    return Candidate(
        name, name, name.title(), f"https://docs.example/{name}", "", text or f"{name} text.", rank, 1 / rank
    )


class FakeRetriever:
    def __init__(self, candidates: list[Candidate], note: str | None = None, fail: Exception | None = None) -> None:
        self.candidates, self.note, self.fail, self.calls = candidates, note, fail, []

    def search(self, question, collection, limit, filters=None, mode="hybrid", explain=True) -> RetrievalResult:
        self.calls.append((question, collection, limit, mode))
        if self.fail:
            raise self.fail
        return RetrievalResult(list(self.candidates[:limit]), {"embed": 1.0, "search": 2.0}, mode=mode, note=self.note)


class FakeReranker:
    """Scores from a table by the passage's first word; records the instruction it was given."""

    name = "fake-reranker"

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores, self.instructions = scores, []

    def score(self, query, documents, instruction=None) -> list[float]:
        self.instructions.append(instruction)
        return [self.scores[d.split()[0].lower()] for d in documents]


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = store.make_engine(f"sqlite:///{tmp_path / 'answers.db'}")
    store.upgrade_database(engine)
    yield store.session_factory(engine)
    engine.dispose()


def service(sessions, retriever, reranker=None, load_error: str | None = None, **options) -> AnswerService:
    def load():
        if load_error:
            raise RerankerLoadError(load_error)
        return reranker

    return AnswerService(
        Presets(sessions, "kb"),
        retriever,
        RerankerSlot(load),
        ExtractiveAnswerer(),
        RankingRecorder(sessions),
        **options,
    )


CANDIDATES = [candidate("billing", 1), candidate("sso", 2, "SSO needs the Business plan."), candidate("okta", 3)]
SCORES = {"billing": 0.1, "sso": 0.9, "okta": 0.5}


def test_an_answer_is_reranked_cited_and_logged_once(sessions) -> None:
    reranker = FakeReranker(SCORES)
    answers = service(sessions, FakeRetriever(CANDIDATES), reranker)
    result = answers.ask("Which plan has SSO?", channel="C1", user="U1")
    assert result.status is AnswerStatus.OK and result.rerank.ok
    assert [rc.candidate.point_id for rc in result.candidates] == ["sso", "okta", "billing"]
    assert [rc.rerank_rank for rc in result.candidates] == [1, 2, 3]
    assert "[1]" in result.answer and result.citations[0].title == "Sso"
    assert reranker.instructions == [store.models.DEFAULT_PRESET_INSTRUCTION]  # the default preset's
    with sessions() as session:
        [log] = session.scalars(select(store.RankingLog)).all()
        assert (log.id, log.status, log.channel, log.user) == (result.ranking_id, "ok", "C1", "U1")
        assert [c.point_id for c in log.candidates] == ["billing", "sso", "okta"]  # stored in retrieval order
        assert [c.rerank_rank for c in log.candidates] == [3, 1, 2]


def test_tied_scores_keep_retrieval_order(sessions) -> None:
    answers = service(sessions, FakeRetriever(CANDIDATES), FakeReranker(dict.fromkeys(SCORES, 0.5)))
    ranked = answers.rank("anything", CANDIDATES, "an instruction")
    assert [rc.candidate.point_id for rc in ranked] == ["billing", "sso", "okta"]


def test_a_blank_preset_instruction_falls_back_to_the_rerankers_default(sessions) -> None:
    with sessions.begin() as session:
        store.default_preset(session).instruction = "   "
    reranker = FakeReranker(SCORES)
    result = service(sessions, FakeRetriever(CANDIDATES), reranker).ask("SSO?")
    assert result.preset.instruction == DEFAULT_INSTRUCTION and reranker.instructions == [DEFAULT_INSTRUCTION]
    assert result.preset.collection == "kb" and result.preset.retrieval_mode == "hybrid"


def test_no_passage_above_min_score_is_no_answer(sessions) -> None:
    with sessions.begin() as session:
        store.default_preset(session).min_score = 0.95
    result = service(sessions, FakeRetriever(CANDIDATES), FakeReranker(SCORES)).ask("SSO?")
    assert result.status is AnswerStatus.NO_ANSWER and "minimum of 0.95" in result.answer
    assert [c.n for c in result.citations] == [1, 2, 3] and not any(rc.used for rc in result.candidates)


def test_an_unloadable_reranker_answers_in_retrieval_order_unless_required(sessions) -> None:
    answers = service(sessions, FakeRetriever(CANDIDATES), load_error="No model at /nowhere. Check RERANK_MODEL.")
    result = answers.ask("SSO?")
    assert not result.rerank.ok and result.rerank == "skipped: reranker unavailable (No model at /nowhere.)"
    assert [rc.candidate.point_id for rc in result.candidates] == ["billing", "sso", "okta"]
    assert not answers.reranker_status().available and "nowhere" in answers.reranker_status().error
    with pytest.raises(RerankerUnavailableError, match="nowhere"):
        answers.rank("SSO?", CANDIDATES, "x")
    with pytest.raises(RerankRequiredError) as raised:
        answers.ask("SSO?", require_rerank=True)
    assert raised.value.stage == "rerank"
    with sessions() as session:
        failed = session.get(store.RankingLog, raised.value.ranking_id)
        assert failed.status == "error" and failed.error.startswith("RerankRequiredError: Reranking is required")


def test_an_unexpected_failure_is_logged_and_raised_from_its_cause(sessions) -> None:
    answers = service(sessions, FakeRetriever([], fail=ConnectionError("Qdrant went away")), FakeReranker(SCORES))
    with pytest.raises(AnswerFailed) as raised:
        answers.ask("SSO?", channel="C9")
    assert isinstance(raised.value.__cause__, ConnectionError) and raised.value.stage == "retrieve"
    with sessions() as session:
        failed = session.get(store.RankingLog, raised.value.ranking_id)
        assert (failed.status, failed.channel, failed.error) == ("error", "C9", "ConnectionError: Qdrant went away")


def test_a_bad_question_is_refused_before_anything_runs(sessions) -> None:
    retriever = FakeRetriever(CANDIDATES)
    with pytest.raises(QuestionError, match="empty"):
        service(sessions, retriever, FakeReranker(SCORES)).ask("   ")
    assert retriever.calls == []


def test_compare_ranks_the_same_candidates_with_both_instructions(sessions) -> None:
    class ByInstruction(FakeReranker):
        def score(self, query, documents, instruction=None):
            flip = instruction == "Billing first"
            return [(1 - s if flip else s) for s in super().score(query, documents, instruction)]

    answers = service(sessions, FakeRetriever(CANDIDATES), ByInstruction(SCORES))
    comparison = answers.compare("default", "Billing first", "Which plan?")
    saved = [row.saved.candidate.point_id for row in comparison.rows]
    draft = [row.draft.candidate.point_id for row in comparison.rows]
    assert saved == ["sso", "okta", "billing"] and draft == ["billing", "okta", "sso"]
    assert [row.moved for row in comparison.rows] == [2, 0, -2]
    with pytest.raises(CompareError, match="draft instruction is empty"):
        answers.compare("default", "  ", "Which plan?")


def test_the_reranker_loads_once_when_questions_arrive_together() -> None:
    """Eight workers asking for the reranker at once load it once (two loads at a time broke transformers)."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    loads: list[str] = []

    def slow_load() -> FakeReranker:
        loads.append(threading.current_thread().name)
        time.sleep(0.2)
        return FakeReranker(SCORES)

    slot = RerankerSlot(slow_load)
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda _: slot.get(), range(8)))
    assert len(loads) == 1 and all(r is got[0] for r in got)
