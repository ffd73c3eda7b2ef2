"""The ranking log: every question, answered or failed, with the preset it ran with and every candidate."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

import store
from bot.answering.results import AnswerStatus, AskResult, PresetSnapshot, RankedCandidate, RerankStatus, leg_fields

log = logging.getLogger(__name__)


def _candidate_row(rc: RankedCandidate) -> dict[str, Any]:
    c = rc.candidate
    return {
        "point_id": c.point_id,
        "doc_id": c.doc_id,
        "title": c.title,
        "source": c.source,
        "section": c.section,
        "text": c.text,
        "retrieval_rank": c.retrieval_rank,
        "retrieval_score": c.retrieval_score,
        **leg_fields(c),
        "rerank_rank": rc.rerank_rank,
        "rerank_score": rc.rerank_score,
        "used": rc.used,
        "citation": rc.citation,
    }


class RankingRecorder:
    """Writes one `ranking_logs` row (and its candidates) per question, in one transaction."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def answered(self, result: AskResult, channel: str | None, user: str | None) -> int:
        """Log an answered (or not-answered) question; returns the ranking id."""
        return self._write(
            question=result.question,
            channel=channel,
            user=user,
            preset=result.preset,
            answer=result.answer,
            status=result.status,
            error=result.note,
            rerank_status=result.rerank,
            reranker=result.reranker,
            timings_ms=result.timings_ms,
            retrieval_mode=result.retrieval_mode,
            candidates=[_candidate_row(rc) for rc in result.candidates],
        )

    def failed(
        self,
        question: str,
        channel: str | None,
        user: str | None,
        preset: PresetSnapshot,
        exc: BaseException,
        timings_ms: dict[str, float],
    ) -> int | None:
        """Log a failed question so reviewers see it; a failing database must not hide `exc` (returns None)."""
        try:
            return self._write(
                question=question,
                channel=channel,
                user=user,
                preset=preset,
                answer=None,
                status=AnswerStatus.ERROR,
                error=f"{type(exc).__name__}: {exc}",
                rerank_status=RerankStatus.skipped("the question failed"),
                reranker=None,
                timings_ms=timings_ms,
                retrieval_mode=None,
                candidates=[],
            )
        except Exception:
            log.exception("Could not log the failed question")
            return None

    def _write(
        self, *, preset: PresetSnapshot, status: AnswerStatus, rerank_status: RerankStatus, **fields: Any
    ) -> int:
        with self._sessions.begin() as session:
            row = store.record_ranking(
                session,
                preset=session.get(store.Preset, preset.id) if preset.id else None,
                instruction=preset.instruction,
                collection=preset.collection,
                status=status.value,
                rerank_status=str(rerank_status),
                **fields,
            )
            return row.id
