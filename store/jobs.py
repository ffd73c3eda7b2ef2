"""Durable work: the queries behind `AnswerJob`. Taking a job is a compare-and-set on its row (state and lease
in the WHERE clause), so two workers, in one process or in several, never hold the same job; on PostgreSQL the
candidates are read with `FOR UPDATE SKIP LOCKED` so concurrent workers pass over each other's rows instead of
waiting. Each function runs in its own short transaction (`sessions.begin()`), so a lease is visible to every
process at once."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from store.models import AnswerJob, utcnow

OPEN_STATES = ("queued", "answering")


def enqueue_job(session: Session, **fields: Any) -> AnswerJob:
    """Add a queued job in the caller's transaction (with the claim of the Slack message it answers); flushes."""
    job = AnswerJob(state="queued", attempts=0, **fields)
    session.add(job)
    session.flush()
    return job


def _takeable(now: datetime):
    return or_(
        AnswerJob.state == "queued",
        (AnswerJob.state == "answering") & (AnswerJob.lease_until < now),  # its process died or hung
    )


def take_job(sessions: sessionmaker[Session], owner: str, lease_s: float) -> AnswerJob | None:
    """The oldest job that is queued or whose lease ran out, now held by `owner` for `lease_s` seconds with one
    more attempt counted; None when there is nothing to do. The returned object is detached (read it only)."""
    for _ in range(5):  # another worker may win the row between the read and the update: try the next one
        with sessions.begin() as session:
            now = utcnow()
            candidate = session.scalar(
                select(AnswerJob.id)
                .where(_takeable(now))
                .order_by(AnswerJob.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if candidate is None:
                return None
            taken = session.execute(
                update(AnswerJob)
                .where(AnswerJob.id == candidate, _takeable(now))
                .values(
                    state="answering",
                    lease_owner=owner,
                    lease_until=now + timedelta(seconds=lease_s),
                    attempts=AnswerJob.attempts + 1,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount == 1:
                job = session.get(AnswerJob, candidate, populate_existing=True)
                session.expunge(job)
                return job
    return None


def renew_leases(sessions: sessionmaker[Session], owner: str, lease_s: float, job_ids: list[int]) -> int:
    """Push out the leases of the jobs `owner` is still working on (its heartbeat); returns how many."""
    if not job_ids:
        return 0
    with sessions.begin() as session:
        now = utcnow()
        result = session.execute(
            update(AnswerJob)
            .where(AnswerJob.lease_owner == owner, AnswerJob.state == "answering", AnswerJob.id.in_(job_ids))
            .values(lease_until=now + timedelta(seconds=lease_s), updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount


def finish_job(
    sessions: sessionmaker[Session],
    job_id: int,
    owner: str,
    state: str,
    *,
    ranking_id: int | None = None,
    error: str | None = None,
) -> bool:
    """Mark a job `answered` or `failed`, if `owner` still holds it (False: its lease was lost to another)."""
    with sessions.begin() as session:
        result = session.execute(
            update(AnswerJob)
            .where(AnswerJob.id == job_id, AnswerJob.lease_owner == owner, AnswerJob.state == "answering")
            .values(
                state=state, ranking_id=ranking_id, error=error, lease_owner=None, lease_until=None, updated_at=utcnow()
            )
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


def set_reply_ts(sessions: sessionmaker[Session], job_id: int, reply_ts: str) -> None:
    """Remember the message a job's answer began streaming into (a later attempt replaces it)."""
    with sessions.begin() as session:
        session.execute(
            update(AnswerJob)
            .where(AnswerJob.id == job_id)
            .values(reply_ts=reply_ts, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )


def release_jobs(sessions: sessionmaker[Session], owner: str, job_ids: list[int] | None = None) -> int:
    """Hand `owner`'s jobs (or those of `job_ids`) back to the queue, the attempt not counted (a shutdown)."""
    with sessions.begin() as session:
        condition = (AnswerJob.lease_owner == owner) & (AnswerJob.state == "answering")
        if job_ids is not None:
            condition &= AnswerJob.id.in_(job_ids)
        result = session.execute(
            update(AnswerJob)
            .where(condition)
            .values(
                state="queued", lease_owner=None, lease_until=None, attempts=AnswerJob.attempts - 1, updated_at=utcnow()
            )
            .execution_options(synchronize_session=False)
        )
        return result.rowcount


def open_jobs(session: Session) -> int:
    """Jobs queued or being answered, by any process: the queue a new question joins."""
    return session.scalar(select(func.count()).select_from(AnswerJob).where(AnswerJob.state.in_(OPEN_STATES))) or 0
