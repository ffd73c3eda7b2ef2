"""One question's path: preset for the channel -> retrieve -> rerank with the preset's instruction -> keep top_n
above min_score -> answer -> log the whole ranking in one transaction."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

import store
from bot.answer import Answer, AnswerWriter, ExtractiveAnswerer, Passage
from rerank import DEFAULT_INSTRUCTION, Reranker, RerankerLoadError
from retrieval import Candidate, Retriever

MAX_QUESTION_CHARS = 4000
log = logging.getLogger(__name__)


class QuestionError(ValueError):
    """The question itself is unusable (empty, too long)."""


class RerankRequiredError(RuntimeError):
    """Reranking was required (--require-rerank / RERANK_REQUIRED) but could not run."""


@dataclass(frozen=True)
class PresetSnapshot:
    """The preset values one question ran with (rows may change while it runs)."""

    id: int | None
    name: str
    version: int
    instruction: str
    candidates_k: int
    top_n: int
    min_score: float
    collection: str
    retrieval_mode: str = "hybrid"


@dataclass
class ScoredCandidate:
    candidate: Candidate
    rerank_rank: int | None = None
    rerank_score: float | None = None
    used: bool = False
    citation: int | None = None


@dataclass
class Citation:
    n: int
    title: str
    section: str
    source: str
    score: float | None


@dataclass
class AskResult:
    question: str
    answer: str
    status: str  # ok | no_answer
    citations: list[Citation]
    candidates: list[ScoredCandidate]
    preset: PresetSnapshot
    rerank: str  # "ok" or "skipped: <reason>"
    reranker: str | None
    answer_writer: str
    note: str | None
    ranking_id: int | None
    timings_ms: dict[str, float] = field(default_factory=dict)
    retrieval_mode: str = "hybrid"  # the mode that ran (see `retrieval_note` when it is not the preset's)
    retrieval_note: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The `ragbot ask --json` contract."""
        return {
            "answer": self.answer,
            "status": self.status,
            "citations": [
                {"n": c.n, "title": c.title, "section": c.section, "source": c.source, "score": c.score}
                for c in self.citations
            ],
            "candidates": [
                {
                    "title": rc.candidate.title,
                    "section": rc.candidate.section,
                    "source": rc.candidate.source,
                    "retrieval_rank": rc.candidate.retrieval_rank,
                    "retrieval_score": rc.candidate.retrieval_score,
                    **channel_fields(rc.candidate),
                    "rerank_rank": rc.rerank_rank,
                    "rerank_score": rc.rerank_score,
                    "used": rc.used,
                }
                for rc in self.candidates
            ],
            "preset": {
                "name": self.preset.name,
                "version": self.preset.version,
                "instruction": self.preset.instruction,
                "candidates_k": self.preset.candidates_k,
                "top_n": self.preset.top_n,
                "min_score": self.preset.min_score,
                "collection": self.preset.collection,
                "retrieval_mode": self.preset.retrieval_mode,
            },
            "retrieval": {"mode": self.retrieval_mode, "note": self.retrieval_note},
            "rerank": self.rerank,
            "reranker": self.reranker,
            "answer_writer": self.answer_writer,
            "note": self.note,
            "ranking_id": self.ranking_id,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }


def channel_fields(candidate: Candidate) -> dict[str, Any]:
    """A candidate's rank and score in the dense and lexical channels (None where it was not among them)."""
    return {
        "dense_rank": candidate.dense_rank,
        "dense_score": candidate.dense_score,
        "lexical_rank": candidate.lexical_rank,
        "lexical_score": candidate.lexical_score,
    }


class RerankerSlot:
    """Loads the reranker on first use, once; remembers why it could not be loaded instead of retrying per question."""

    def __init__(self, loader: Callable[[], Reranker]) -> None:
        self._loader = loader
        self._reranker: Reranker | None = None
        self.error: str | None = None

    def get(self) -> Reranker | None:
        if self._reranker is None and self.error is None:
            try:
                self._reranker = self._loader()
            except RerankerLoadError as exc:
                self.error = str(exc)
                log.warning("Reranking disabled: %s", exc)
        return self._reranker


def first_sentence(text: str) -> str:
    """The gist of an error for a one-line status; the whole message is logged once where it happens."""
    head, sep, _ = text.partition(". ")
    return head + ("." if sep else "")


def validate_question(question: str) -> str:
    text = question.strip()
    if not text:
        raise QuestionError('The question is empty: ask something, e.g. ragbot ask "How do I set up SAML?"')
    if len(text) > MAX_QUESTION_CHARS:
        raise QuestionError(
            f"The question is {len(text):,} characters long; the limit is {MAX_QUESTION_CHARS:,}. "
            "Ask about one thing at a time."
        )
    return text


def _wait_for_explanation(explaining: Future[None]) -> None:
    """Per-channel ranks are for reviewers: if fetching them fails, the answer goes out without them."""
    try:
        explaining.result(timeout=10)
    except Exception:
        log.warning("Could not fetch the candidates' dense and lexical ranks", exc_info=True)


class Pipeline:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        retriever: Retriever,
        reranker: RerankerSlot,
        answer_writer: AnswerWriter,
        default_collection: str = "kb",
        require_rerank: bool = False,
    ) -> None:
        self.sessions = sessions
        self.retriever = retriever
        self.reranker = reranker
        self.answer_writer = answer_writer
        self.default_collection = default_collection
        self.require_rerank = require_rerank
        self._extractive = ExtractiveAnswerer()
        # Fetches each candidate's per-channel ranks while the reranker works (off the answer's critical path).
        self._background = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ragbot-explain")

    def preset_for(self, channel: str | None, preset_name: str | None = None) -> PresetSnapshot:
        """The preset bound to `channel` (else the default), or the one named `preset_name` when given."""
        with self.sessions() as session:
            row = store.preset_named(session, preset_name) if preset_name else store.preset_for(session, channel)
            return PresetSnapshot(
                id=row.id,
                name=row.name,
                version=row.version,
                instruction=(row.instruction or "").strip() or DEFAULT_INSTRUCTION,
                candidates_k=row.candidates_k,
                top_n=row.top_n,
                min_score=row.min_score,
                collection=row.collection or self.default_collection,
                retrieval_mode=row.retrieval_mode or "hybrid",
            )

    def ask(
        self,
        question: str,
        channel: str | None = None,
        user: str | None = None,
        require_rerank: bool | None = None,
        context: str | None = None,
        preset_name: str | None = None,
    ) -> AskResult:
        """Answer one question. `context` (e.g. a thread's first question) is put before the question for
        retrieval and reranking; `preset_name` picks a preset instead of the channel's. On failure the exception
        is raised with `ranking_id` set to the logged error row (None when the log itself failed), for the
        user's reference."""
        question = validate_question(question)
        if context and context.strip():
            question = validate_question(f"{context.strip()}\n{question}")
        required = self.require_rerank if require_rerank is None else require_rerank
        started = time.perf_counter()
        preset = self.preset_for(channel, preset_name)
        timings: dict[str, float] = {}
        try:
            retrieved = self.retriever.search(
                question, preset.collection, preset.candidates_k, mode=preset.retrieval_mode, explain=False
            )
            timings.update(retrieved.timings_ms)
            explaining = self._background.submit(retrieved.explain)
            ranked, rerank_status, reranker_name, timings["rerank"] = self._rerank(
                question, retrieved.candidates, preset, required
            )
            _wait_for_explanation(explaining)
            t0 = time.perf_counter()
            result = self._answer(question, ranked, preset, rerank_status, reranker_name)
            result.retrieval_mode, result.retrieval_note = retrieved.mode, retrieved.note
            timings["answer"] = (time.perf_counter() - t0) * 1000
        except Exception as exc:
            timings["total"] = (time.perf_counter() - started) * 1000
            exc.ranking_id = self._log_failure(question, channel, user, preset, exc, timings)  # type: ignore[attr-defined]
            raise
        timings["total"] = (time.perf_counter() - started) * 1000
        stages = ("embed", "tokenize", "search", "rerank", "answer", "total")
        result.timings_ms = {k: timings.get(k, 0.0) for k in stages}
        result.ranking_id = self._log(result, channel, user)
        return result

    # -- stages ------------------------------------------------------------------------------------
    def _rerank(
        self, question: str, candidates: list[Candidate], preset: PresetSnapshot, required: bool
    ) -> tuple[list[ScoredCandidate], str, str | None, float]:
        t0 = time.perf_counter()
        ranked = [ScoredCandidate(c) for c in candidates]
        reranker = self.reranker.get()
        if reranker is None:
            reason = f"reranker unavailable ({first_sentence(self.reranker.error or '')})"
        elif not candidates:
            return ranked, "skipped: no candidates", reranker.name, 0.0
        else:
            try:
                scores = reranker.score(question, [c.passage() for c in candidates], preset.instruction)
            except Exception as exc:  # a broken reranker must not take answers down with it
                log.exception("Reranking failed")
                reason = f"reranker failed ({type(exc).__name__}: {exc})"
            else:
                for rc, score in zip(ranked, scores, strict=True):
                    rc.rerank_score = float(score)
                # Stable sort: ties keep retrieval order.
                order = sorted(ranked, key=lambda rc: -(rc.rerank_score or 0.0))
                for rank, rc in enumerate(order, start=1):
                    rc.rerank_rank = rank
                return order, "ok", reranker.name, (time.perf_counter() - t0) * 1000
        if required:
            raise RerankRequiredError(f"Reranking is required (--require-rerank / RERANK_REQUIRED) but {reason}.")
        name = reranker.name if reranker else None
        return ranked, f"skipped: {reason}", name, (time.perf_counter() - t0) * 1000

    def _answer(
        self,
        question: str,
        ranked: list[ScoredCandidate],
        preset: PresetSnapshot,
        rerank_status: str,
        reranker_name: str | None,
    ) -> AskResult:
        reranked = rerank_status == "ok"
        # min_score is on the reranker's 0-1 scale; retrieval scores are not comparable to it.
        eligible = [rc for rc in ranked if not reranked or (rc.rerank_score or 0.0) >= preset.min_score]
        chosen = eligible[: preset.top_n]
        note = None
        if not chosen:
            best = ranked[: preset.top_n]
            if not ranked:
                text = "I found nothing in the knowledge base for this question."
            else:
                top = ranked[0].rerank_score or 0.0
                text = (
                    f"I could not find a passage that answers this confidently (best rerank score {top:.2f} is "
                    f"below this preset's minimum of {preset.min_score:g}). The closest passages are listed "
                    "below; check them yourself or rephrase the question."
                )
            citations = [self._citation(i, rc) for i, rc in enumerate(best, start=1)]
            return AskResult(
                question, text, "no_answer", citations, ranked, preset, rerank_status, reranker_name, "none", note, None
            )

        passages = [Passage(n, rc.candidate, rc.rerank_score) for n, rc in enumerate(chosen, start=1)]
        try:
            answer: Answer = self.answer_writer.write(question, passages)
        except Exception as exc:  # the LLM is down or slow: still answer, and say why
            log.warning("Answer writer %s failed: %s", self.answer_writer.name, exc)
            answer = self._extractive.write(question, passages)
            answer.note = f"The LLM could not answer ({type(exc).__name__}: {exc}); this is an extractive answer."
        if not answer.cited:  # an answer without citations is not grounded: cite what it was written from
            answer.cited = [p.n for p in passages]
        for n, rc in enumerate(chosen, start=1):
            rc.used = True
            rc.citation = n
        citations = [self._citation(n, chosen[n - 1]) for n in answer.cited]
        return AskResult(
            question,
            answer.text,
            "ok",
            citations,
            ranked,
            preset,
            rerank_status,
            reranker_name,
            answer.writer,
            answer.note,
            None,
        )

    @staticmethod
    def _citation(n: int, rc: ScoredCandidate) -> Citation:
        c = rc.candidate
        return Citation(n=n, title=c.title, section=c.section, source=c.source, score=rc.rerank_score)

    # -- logging -----------------------------------------------------------------------------------
    def _log(self, result: AskResult, channel: str | None, user: str | None) -> int:
        with self.sessions.begin() as session:
            row = store.record_ranking(
                session,
                question=result.question,
                channel=channel,
                user=user,
                preset=session.get(store.Preset, result.preset.id) if result.preset.id else None,
                instruction=result.preset.instruction,
                collection=result.preset.collection,
                answer=result.answer,
                status=result.status,
                error=result.note,
                rerank_status=result.rerank,
                reranker=result.reranker,
                timings_ms=result.timings_ms,
                retrieval_mode=result.retrieval_mode,
                candidates=[
                    {
                        "point_id": rc.candidate.point_id,
                        "doc_id": rc.candidate.doc_id,
                        "title": rc.candidate.title,
                        "source": rc.candidate.source,
                        "section": rc.candidate.section,
                        "text": rc.candidate.text,
                        "retrieval_rank": rc.candidate.retrieval_rank,
                        "retrieval_score": rc.candidate.retrieval_score,
                        **channel_fields(rc.candidate),
                        "rerank_rank": rc.rerank_rank,
                        "rerank_score": rc.rerank_score,
                        "used": rc.used,
                        "citation": rc.citation,
                    }
                    for rc in result.candidates
                ],
            )
            return row.id

    def _log_failure(
        self,
        question: str,
        channel: str | None,
        user: str | None,
        preset: PresetSnapshot,
        exc: BaseException,
        timings: dict[str, float],
    ) -> int | None:
        """Failed questions are logged too, so reviewers see them; a failing database must not hide `exc`."""
        try:
            with self.sessions.begin() as session:
                row = store.record_ranking(
                    session,
                    question=question,
                    channel=channel,
                    user=user,
                    preset=session.get(store.Preset, preset.id) if preset.id else None,
                    instruction=preset.instruction,
                    collection=preset.collection,
                    answer=None,
                    status="error",
                    error=f"{type(exc).__name__}: {exc}",
                    rerank_status="skipped: the question failed",
                    reranker=None,
                    timings_ms=timings,
                    candidates=[],
                )
                return row.id
        except Exception:
            log.exception("Could not log the failed question")
            return None
