"""The answer service: the one place a question is answered. Preset for the channel -> retrieve -> rerank with
the preset's instruction -> keep top_n above min_score (or, without a reranker floor, only when retrieval found
something relevant: `bot/answering/relevance.py`) -> write the answer -> log the whole ranking.

The Slack app, the admin app, the CLI and the evaluation use this API and nothing below it."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from bot.answering.compare import compare_presets
from bot.answering.conversation import Turn, joined_question
from bot.answering.errors import AnswerError, AnswerFailed, RerankerUnavailableError, RerankRequiredError
from bot.answering.passages import choose_places, merged_passage
from bot.answering.presets import Presets
from bot.answering.progress import AnswerProgress
from bot.answering.questions import MAX_QUESTION_CHARS, validate_question
from bot.answering.ranking import RerankerSlot, first_sentence, rerank_candidates
from bot.answering.record import RankingRecorder
from bot.answering.relevance import RelevanceGate
from bot.answering.results import (
    AnswerStatus,
    AskResult,
    Citation,
    Comparison,
    PresetSnapshot,
    RankedCandidate,
    RerankerStatus,
    RerankStatus,
)
from bot.answering.writers import Answer, AnswerWriter, CitationStream, ExtractiveAnswerer, number_by_first_citation
from redact import mask_secrets
from rerank import Reranker
from retrieval import Candidate, Retriever

log = logging.getLogger(__name__)
STAGES = ("embed", "tokenize", "search", "rerank", "answer", "total")


def _report(call: Callable[..., None], *args: Any) -> None:
    """Progress is for the asker's eyes: a surface failing to show it must not cost the answer."""
    try:
        call(*args)
    except Exception:
        log.warning("Could not report an answer's progress", exc_info=True)


def _wait_for_explanation(explaining: Future[None]) -> None:
    """Per-leg ranks are for reviewers: if fetching them fails, the answer goes out without them."""
    try:
        explaining.result(timeout=10)
    except Exception:
        log.warning("Could not fetch the candidates' dense and lexical ranks", exc_info=True)


class AnswerService:
    """Answers questions, ranks given texts, compares presets. Built once per process by the composition root.

    `relevance` judges whether the knowledge base addresses a question at all when no reranker floor applies
    (no reranker, or a preset whose `min_score` is 0): below its floor the answer is "not found" with the closest
    passages. None answers from whatever retrieval found (test doubles whose candidates carry no scores)."""

    def __init__(
        self,
        presets: Presets,
        retriever: Retriever,
        reranker: RerankerSlot,
        answer_writer: AnswerWriter,
        recorder: RankingRecorder,
        require_rerank: bool = False,
        relevance: RelevanceGate | None = None,
    ) -> None:
        self.presets = presets
        self.retriever = retriever
        self.reranker = reranker
        self.answer_writer = answer_writer
        self.recorder = recorder
        self.require_rerank = require_rerank
        self.relevance = relevance
        self._extractive = ExtractiveAnswerer()
        # Fetches each candidate's per-leg ranks while the reranker works (off the answer's critical path).
        self._background = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ragbot-explain")

    # -- the public API ----------------------------------------------------------------------------
    def preset(self, channel: str | None = None, name: str | None = None) -> PresetSnapshot:
        """The preset bound to `channel` (else the default), or the one named `name` (ValueError if none)."""
        return self.presets.resolve(channel, name)

    def reranker_status(self) -> RerankerStatus:
        return self.reranker.status()

    def loaded_reranker(self) -> Reranker:
        """The reranker, loading it now; RerankerUnavailableError says why it cannot load."""
        model = self.reranker.get()
        if model is None:
            raise RerankerUnavailableError(self.reranker.error or "no reason was given")
        return model

    def rank(self, query: str, candidates: list[Candidate], instruction: str) -> list[RankedCandidate]:
        """`candidates` best first by the reranker with `instruction` (ties keep the order given)."""
        return rerank_candidates(self.loaded_reranker(), query, candidates, instruction)

    def compare(
        self, preset_name: str, draft_instruction: str, question: str, draft_mode: str | None = None
    ) -> Comparison:
        """The saved preset `preset_name` against a draft instruction (and retrieval mode) on one question."""
        saved = self.preset(name=preset_name)
        return compare_presets(self.retriever, self.reranker, saved, draft_instruction, question, draft_mode)

    def ask(
        self,
        question: str,
        channel: str | None = None,
        user: str | None = None,
        require_rerank: bool | None = None,
        context: str | None = None,
        preset_name: str | None = None,
        collection: str | None = None,
        history: Sequence[Turn] = (),
        progress: AnswerProgress | None = None,
    ) -> AskResult:
        """Answer one question. `history` is the conversation before a follow-up (oldest first): the follow-up is
        searched and reranked as a standalone question (rewritten by the LLM, else joined to the earlier user
        turns), and the LLM sees the history when it answers; both forms are logged. `context` (text to put before
        the question for retrieval) is the older, simpler form of the same. `preset_name` picks a preset instead
        of the channel's, `collection` searches that collection instead of the preset's. `progress` hears the
        stages and, when the writer streams, the answer's text. Once the question is accepted every outcome is
        logged: a failure raises an `AnswerError` whose `ranking_id` is the logged row (`AnswerFailed` from the
        cause when it was unexpected)."""
        asked = validate_question(question)
        history = list(history)
        question = asked
        if context and context.strip():
            question = validate_question(f"{context.strip()}\n{asked}")
        progress = progress or AnswerProgress()
        required = self.require_rerank if require_rerank is None else require_rerank
        started = time.perf_counter()
        preset = self.preset(channel, preset_name)
        if collection:
            preset = dataclasses.replace(preset, collection=collection)
        timings: dict[str, float] = {}
        stage = "retrieve"
        try:
            if history:
                question = self._standalone(history, asked)
            _report(progress.searching, question)
            retrieved = self.retriever.search(
                question,
                preset.collection,
                preset.candidates_k,
                filters=preset.filters(),
                mode=preset.retrieval_mode,
                explain=False,
            )
            timings.update(retrieved.timings_ms)
            explaining = self._background.submit(retrieved.explain)
            if retrieved.candidates:
                _report(progress.reading, len(retrieved.candidates))
            stage = "rerank"
            ranked, rerank_status, reranker_name, timings["rerank"] = self._rerank(
                question, retrieved.candidates, preset, required
            )
            _wait_for_explanation(explaining)
            stage = "answer"
            t0 = time.perf_counter()
            result = self._answer(question, ranked, preset, rerank_status, reranker_name, history, progress)
            result.retrieval_mode, result.retrieval_note = retrieved.mode, retrieved.note
            result.asked = asked if asked != question else None
            timings["answer"] = (time.perf_counter() - t0) * 1000
        except AnswerError as exc:
            timings["total"] = (time.perf_counter() - started) * 1000
            exc.ranking_id = self.recorder.failed(question, channel, user, preset, exc, timings, asked)
            exc.stage = stage
            raise
        except Exception as exc:
            timings["total"] = (time.perf_counter() - started) * 1000
            ranking_id = self.recorder.failed(question, channel, user, preset, exc, timings, asked)
            raise AnswerFailed(exc, ranking_id=ranking_id, stage=stage) from exc
        timings["total"] = (time.perf_counter() - started) * 1000
        result.timings_ms = {k: timings.get(k, 0.0) for k in STAGES}
        try:
            result.ranking_id = self.recorder.answered(result, channel, user)
        except Exception as exc:  # not the database being away (that is kept on disk): a bad record
            raise AnswerFailed(exc, ranking_id=None, stage="record") from exc
        return result

    def close(self) -> None:
        """Stop the background thread; the collaborators belong to whoever built them."""
        self._background.shutdown(wait=False, cancel_futures=True)

    # -- stages ------------------------------------------------------------------------------------
    def _standalone(self, history: list[Turn], asked: str) -> str:
        """The follow-up as a question that stands on its own: the LLM's rewrite, else the earlier user turns
        joined to it (also when the rewrite fails: the follow-up is still answered)."""
        try:
            rewritten = self.answer_writer.standalone_question(history, asked)
            if rewritten:
                return validate_question(rewritten)
        except Exception as exc:
            log.warning(
                "Could not rewrite a follow-up with %s; searching it with the thread's questions: %s",
                self.answer_writer.name,
                mask_secrets(f"{type(exc).__name__}: {exc}"),
            )
        return joined_question(history, asked, MAX_QUESTION_CHARS)

    def _rerank(
        self, question: str, candidates: list[Candidate], preset: PresetSnapshot, required: bool
    ) -> tuple[list[RankedCandidate], RerankStatus, str | None, float]:
        t0 = time.perf_counter()
        reranker = self.reranker.get()
        if reranker is None:
            reason = f"reranker unavailable ({first_sentence(self.reranker.error or '')})"
        elif not candidates:
            return [], RerankStatus.skipped("no candidates"), reranker.name, 0.0
        else:
            try:
                ranked = rerank_candidates(reranker, question, candidates, preset.instruction)
            except Exception as exc:  # a broken reranker must not take answers down with it
                reason = f"reranker failed ({type(exc).__name__}: {exc})"
                # One line: the answer still comes and says why it is in retrieval order; the chain is for DEBUG.
                log.warning(
                    "Reranking failed, answering in retrieval order: %s: %s",
                    type(exc).__name__,
                    mask_secrets(str(exc)),
                    exc_info=log.isEnabledFor(logging.DEBUG),
                )
            else:
                return ranked, RerankStatus.done(), reranker.name, (time.perf_counter() - t0) * 1000
        if required:
            raise RerankRequiredError(f"Reranking is required (--require-rerank / RERANK_REQUIRED) but {reason}.")
        name = reranker.name if reranker else None
        in_retrieval_order = [RankedCandidate(c) for c in candidates]
        return in_retrieval_order, RerankStatus.skipped(reason), name, (time.perf_counter() - t0) * 1000

    def _eligible(
        self, question: str, ranked: list[RankedCandidate], preset: PresetSnapshot, rerank_status: RerankStatus
    ) -> tuple[list[RankedCandidate], str]:
        """The candidates an answer may be written from, and what was measured when that leaves none.

        A preset's `min_score` above 0 is a floor on the reranker's 0-1 scale, applied when reranking ran (retrieval
        scores are not on that scale). Otherwise the relevance gate judges the question against what retrieval
        found: all candidates stay eligible, or none."""
        if rerank_status.ok and preset.min_score > 0:
            top = (ranked[0].rerank_score or 0.0) if ranked else 0.0
            eligible = [rc for rc in ranked if (rc.rerank_score or 0.0) >= preset.min_score]
            return eligible, f"best rerank score {top:.2f} is below this preset's minimum of {preset.min_score:g}"
        if self.relevance is not None and ranked:
            # Judged on retrieval's own order: a reranker's order (random weights, or a poor fit) must not hide
            # the passages retrieval matched best.
            in_retrieval_order = sorted((rc.candidate for rc in ranked), key=lambda c: c.retrieval_rank)
            relevance = self.relevance.measure(question, in_retrieval_order)
            if not relevance.enough:
                return [], relevance.describe()
        return ranked, ""

    def _answer(
        self,
        question: str,
        ranked: list[RankedCandidate],
        preset: PresetSnapshot,
        rerank_status: RerankStatus,
        reranker_name: str | None,
        history: list[Turn] | None = None,
        progress: AnswerProgress | None = None,
    ) -> AskResult:
        eligible, why_not = self._eligible(question, ranked, preset, rerank_status)
        places = choose_places(eligible, preset.top_n)  # one section's overlapping chunks are one place
        if not places:
            if not ranked:
                text = "I found nothing in the knowledge base for this question."
            else:
                text = (
                    f"I could not find a passage that answers this confidently ({why_not}). The closest passages "
                    "are listed below; check them yourself or rephrase the question."
                )
            closest = [Citation.of(i, p[0]) for i, p in enumerate(choose_places(ranked, preset.top_n), start=1)]
            return AskResult(
                question,
                text,
                AnswerStatus.NO_ANSWER,
                closest,
                ranked,
                preset,
                rerank_status,
                reranker_name,
                "none",
                None,
            )

        passages = [merged_passage(n, place) for n, place in enumerate(places, start=1)]
        progress = progress or AnswerProgress()
        _report(progress.writing)
        numbering = CitationStream({p.n for p in passages})

        def streamed(piece: str) -> None:
            shown = numbering.feed(piece)
            if shown:
                _report(progress.text, shown)

        try:
            # Streamed only for a caller that shows the text (the CLI, the admin and the evaluation do not): a
            # stream has one more way to fail (a server that never says it finished), with nothing gained.
            listens = type(progress).text is not AnswerProgress.text
            answer: Answer = self.answer_writer.write(question, passages, history or (), streamed if listens else None)
            if held := numbering.finish():
                _report(progress.text, held)
        except Exception as exc:  # the LLM is down or slow: still answer, and say why
            reason = mask_secrets(f"{type(exc).__name__}: {exc}")  # LLM_BASE_URL may carry a key
            log.warning("Answer writer %s failed: %s", self.answer_writer.name, reason)
            answer = self._extractive.write(question, passages)
            answer.note = f"The LLM could not answer ({reason}); this is an extractive answer."
        text, order = number_by_first_citation(answer.text, {p.n for p in passages})
        if not order:  # an answer without citations is not grounded: cite what it was written from
            order = answer.cited or [p.n for p in passages]
        # Readers see sources 1..k in the order the answer cites them; passages handed over but not cited follow
        # (k+1..), so every used candidate has a number and chunks merged into one passage share theirs.
        numbers = {n: k for k, n in enumerate([*order, *(p.n for p in passages if p.n not in order)], start=1)}
        for n, place in enumerate(places, start=1):
            for rc in place:
                rc.used = True
                rc.citation = numbers[n]
        citations = [Citation.of(numbers[n], places[n - 1][0]) for n in order]
        return AskResult(
            question,
            text,
            AnswerStatus.OK,
            citations,
            ranked,
            preset,
            rerank_status,
            reranker_name,
            answer.writer,
            answer.note,
        )
