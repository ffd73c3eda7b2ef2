"""Data care: questions (customer details) are not kept forever. Rankings older than a cutoff go with their
candidates, feedback, labels and escalations; so do finished answer jobs (they hold the question too), the Slack
deduplication keys, Slack refusals (they hold the refused question and who asked) and assistant pane threads
not touched since the cutoff. A queued or running job is never touched.

Deletes run in batches, each its own short transaction, so a large log is never one long lock, and a purge
that is interrupted leaves nothing half-deleted (a later run carries on). The children of a ranking are
deleted explicitly in the same transaction as their parent rather than left to ``ON DELETE CASCADE``: that
gives exact counts, and holds on a SQLite connection that was opened without ``PRAGMA foreign_keys``."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import and_, delete, exists, func, select, tuple_
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from store.jobs import OPEN_STATES
from store.models import (
    AnswerJob,
    AssistantThread,
    CandidateLabel,
    Escalation,
    Feedback,
    LoggedCandidate,
    RankingLog,
    SlackEvent,
    SlackRefusal,
)

__all__ = ["BATCH_SIZE", "PurgeCounts", "count_older_than", "purge_older_than"]

# Rankings per transaction (each has its candidates, ~20 rows, and their labels): small enough that a purge
# never holds locks for long, large enough that a year of questions takes seconds.
BATCH_SIZE = 500


@dataclass(frozen=True)
class PurgeCounts:
    """Rows deleted (or, for a dry run, that would be), per kind."""

    rankings: int = 0
    candidates: int = 0
    feedback: int = 0
    labels: int = 0
    answer_jobs: int = 0
    slack_events: int = 0
    escalations: int = 0
    slack_refusals: int = 0
    assistant_threads: int = 0

    def __add__(self, other: PurgeCounts) -> PurgeCounts:
        return PurgeCounts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))


def _finished_jobs(cutoff: datetime) -> ColumnElement[bool]:
    return and_(AnswerJob.created_at < cutoff, AnswerJob.state.not_in(OPEN_STATES))


def _old_events(cutoff: datetime) -> ColumnElement[bool]:
    # The claim of a question still queued or being answered stays: it keeps Slack's retries of it out.
    open_job = exists().where(
        AnswerJob.channel == SlackEvent.channel, AnswerJob.ts == SlackEvent.ts, AnswerJob.state.in_(OPEN_STATES)
    )
    return and_(SlackEvent.created_at < cutoff, ~open_job)


def count_older_than(session: Session, cutoff: datetime) -> PurgeCounts:
    """What :func:`purge_older_than` would delete now (for ``--dry-run``)."""
    old = select(RankingLog.id).where(RankingLog.created_at < cutoff)

    def count(model: type, *where: ColumnElement[bool]) -> int:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0

    return PurgeCounts(
        rankings=count(RankingLog, RankingLog.created_at < cutoff),
        candidates=count(LoggedCandidate, LoggedCandidate.ranking_id.in_(old)),
        feedback=count(Feedback, Feedback.ranking_id.in_(old)),
        labels=count(CandidateLabel, CandidateLabel.ranking_id.in_(old)),
        answer_jobs=count(AnswerJob, _finished_jobs(cutoff)),
        slack_events=count(SlackEvent, _old_events(cutoff)),
        escalations=count(Escalation, Escalation.ranking_id.in_(old)),
        slack_refusals=count(SlackRefusal, SlackRefusal.created_at < cutoff),
        assistant_threads=count(AssistantThread, AssistantThread.updated_at < cutoff),
    )


def _deleted(session: Session, model: type, *where: ColumnElement[bool]) -> int:
    result = session.execute(delete(model).where(*where).execution_options(synchronize_session=False))
    return result.rowcount or 0


def _purge_rankings(session: Session, cutoff: datetime, batch_size: int) -> PurgeCounts:
    ids = list(
        session.scalars(
            select(RankingLog.id).where(RankingLog.created_at < cutoff).order_by(RankingLog.id).limit(batch_size)
        )
    )
    if not ids:
        return PurgeCounts()
    labels = _deleted(session, CandidateLabel, CandidateLabel.ranking_id.in_(ids))
    feedback = _deleted(session, Feedback, Feedback.ranking_id.in_(ids))
    escalations = _deleted(session, Escalation, Escalation.ranking_id.in_(ids))
    candidates = _deleted(session, LoggedCandidate, LoggedCandidate.ranking_id.in_(ids))
    rankings = _deleted(session, RankingLog, RankingLog.id.in_(ids))
    return PurgeCounts(
        rankings=rankings, candidates=candidates, feedback=feedback, labels=labels, escalations=escalations
    )


def _purge_rows(session: Session, model: type, where: ColumnElement[bool], batch_size: int) -> int:
    ids = list(session.scalars(select(model.id).where(where).order_by(model.id).limit(batch_size)))
    # The condition again in the delete: a job may have been taken up again since it was read.
    return _deleted(session, model, model.id.in_(ids), where) if ids else 0


def _purge_jobs(session: Session, cutoff: datetime, batch_size: int) -> PurgeCounts:
    return PurgeCounts(answer_jobs=_purge_rows(session, AnswerJob, _finished_jobs(cutoff), batch_size))


def _purge_events(session: Session, cutoff: datetime, batch_size: int) -> PurgeCounts:
    return PurgeCounts(slack_events=_purge_rows(session, SlackEvent, _old_events(cutoff), batch_size))


def _purge_refusals(session: Session, cutoff: datetime, batch_size: int) -> PurgeCounts:
    return PurgeCounts(slack_refusals=_purge_rows(session, SlackRefusal, SlackRefusal.created_at < cutoff, batch_size))


def _purge_threads(session: Session, cutoff: datetime, batch_size: int) -> PurgeCounts:
    # Keyed by (channel_id, thread_ts), not an id. A thread its user came back to since it was read stays.
    stale = AssistantThread.updated_at < cutoff
    key = tuple_(AssistantThread.channel_id, AssistantThread.thread_ts)
    keys = session.execute(
        select(AssistantThread.channel_id, AssistantThread.thread_ts)
        .where(stale)
        .order_by(AssistantThread.channel_id, AssistantThread.thread_ts)
        .limit(batch_size)
    ).all()
    deleted = _deleted(session, AssistantThread, key.in_([tuple(k) for k in keys]), stale) if keys else 0
    return PurgeCounts(assistant_threads=deleted)


def purge_older_than(sessions: sessionmaker[Session], cutoff: datetime, *, batch_size: int = BATCH_SIZE) -> PurgeCounts:
    """Delete rankings (with their candidates, feedback, labels and escalations), finished answer jobs, Slack
    events and Slack refusals created before `cutoff`, and assistant threads not updated since, `batch_size` rows
    a transaction; returns what was deleted."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    total = PurgeCounts()
    for step in (_purge_rankings, _purge_jobs, _purge_events, _purge_refusals, _purge_threads):
        while True:
            with sessions.begin() as session:
                done = step(session, cutoff, batch_size)
            total += done
            if done.total == 0:
                break
    return total
