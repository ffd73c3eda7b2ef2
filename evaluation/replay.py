"""Replay from the ranking log: re-rank the logged candidates of real questions that reviewers labeled, with
draft instructions, without touching Slack. The logged rerank order is kept as the "as answered" row."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

import store
from evaluation.dataset import EvalItem
from evaluation.metrics import question_metrics
from evaluation.runner import ConfigRanking, EvalConfig, QuestionRun, rank_candidates
from rerank import Reranker
from retrieval import Candidate

AS_ANSWERED = "as answered (logged rerank)"


def logged_runs(
    session: Session,
    since: timedelta,
    reranker: Reranker | None,
    configs: Sequence[EvalConfig],
    progress: Callable[[int], None] | None = None,
) -> list[QuestionRun]:
    cutoff = datetime.now(timezone.utc) - since
    labeled = select(store.CandidateLabel.ranking_id).distinct()
    rankings = session.scalars(
        select(store.RankingLog)
        .where(store.RankingLog.created_at >= cutoff, store.RankingLog.id.in_(labeled))
        .options(selectinload(store.RankingLog.candidates))
        .order_by(store.RankingLog.id)
    ).all()
    runs = []
    for number, log in enumerate(rankings, start=1):
        labels = session.scalars(select(store.CandidateLabel).where(store.CandidateLabel.ranking_id == log.id)).all()
        votes: dict[int, list[bool]] = {}
        for label in labels:
            votes.setdefault(label.candidate_id, []).append(label.relevant)
        relevant_ids = {cid for cid, v in votes.items() if sum(v) * 2 > len(v)}  # majority of reviewers
        rows = list(log.candidates)  # retrieval order
        relevance = {row.source: 1.0 for row in rows if row.id in relevant_ids}
        if not relevance:
            continue
        candidates = [
            Candidate(r.point_id, r.doc_id, r.title, r.source, r.section, r.text, r.retrieval_rank, r.retrieval_score)
            for r in rows
        ]
        item = EvalItem(question=log.question, relevance=relevance, channel=log.channel, id=str(log.id))
        run = rank_candidates(item, candidates, reranker, configs)
        if all(r.rerank_rank is not None for r in rows):
            order = sorted(range(len(rows)), key=lambda i: rows[i].rerank_rank)
            run.by_config[AS_ANSWERED] = ConfigRanking(
                order, question_metrics([run.keys[i] for i in order], relevance), 0.0
            )
        runs.append(run)
        if progress:
            progress(number)
    return runs
