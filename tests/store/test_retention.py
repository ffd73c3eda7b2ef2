"""Retention on SQLite and PostgreSQL: rankings older than the cutoff go with their candidates, feedback, labels
and escalations, finished answer jobs, Slack events and Slack refusals older than it go too, and so do assistant
threads not updated since; newer rows, open jobs and the Slack claims of open jobs stay, in batches, and what the
dry run counts is what the purge deletes."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

import store
from store import retention
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
    utcnow,
)

NOW = utcnow()
OLD = NOW - timedelta(days=120)
NEW = NOW - timedelta(days=3)
CUTOFF = NOW - timedelta(days=90)


def add_ranking(session: Session, created_at: datetime, question: str, candidates: int = 3) -> RankingLog:
    ranking = RankingLog(
        created_at=created_at,
        question=question,
        channel="C1",
        user="U1",
        preset_name="default",
        preset_version=1,
        instruction="i",
        collection="kb",
        answer="a",
        status="ok",
        rerank_status="ok",
        timings_ms={},
    )
    session.add(ranking)
    session.flush()
    for n in range(candidates):
        session.add(
            LoggedCandidate(
                ranking_id=ranking.id,
                point_id=f"{ranking.id}-{n}",
                doc_id="d",
                title="t",
                source="s",
                section="",
                text="customer details",
                retrieval_rank=n + 1,
                retrieval_score=0.5,
            )
        )
    session.flush()
    session.add(Feedback(ranking_id=ranking.id, user="U2", value=-1, comment="the customer is ACME", created_at=NEW))
    first = session.scalars(select(LoggedCandidate).where(LoggedCandidate.ranking_id == ranking.id)).first()
    session.add(CandidateLabel(candidate_id=first.id, ranking_id=ranking.id, reviewer="rita", relevant=True))
    session.add(Escalation(ranking_id=ranking.id, user="U2", via="channel", target="C0SUPPORT1", created_at=NEW))
    return ranking


def add_slack_memory(session: Session, when: datetime, name: str) -> None:
    """A refusal (the refused question and who asked) and an assistant thread last touched at `when`."""
    session.add(SlackRefusal(created_at=when, reason="external", channel="C1", user="UX", question=f"Q {name}"))
    session.add(AssistantThread(channel_id="D1", thread_ts=name, context={"channel_id": "C1"}, updated_at=when))


def add_job(session: Session, created_at: datetime, state: str, ts: str) -> None:
    session.add(AnswerJob(kind="mention", state=state, question=f"Q {ts}", channel="C1", ts=ts, created_at=created_at))
    session.add(SlackEvent(event_id=f"Ev{ts}", channel="C1", ts=ts, created_at=created_at))


@pytest.fixture
def sessions(migrated: Engine) -> sessionmaker[Session]:
    sessions = store.session_factory(migrated)
    with sessions.begin() as session:
        for i in range(5):
            add_ranking(session, OLD - timedelta(hours=i), f"old question {i}")
        for i in range(2):
            add_ranking(session, NEW, f"new question {i}")
        for n, state in enumerate(("answered", "failed", "queued", "answering")):
            add_job(session, OLD, state, f"1.{n}")
            add_job(session, NEW, state, f"2.{n}")
        for n in range(3):
            add_slack_memory(session, OLD - timedelta(hours=n), f"1.{n}")
        add_slack_memory(session, NEW, "2.0")
    return sessions


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_purge_deletes_what_is_older_than_the_cutoff_in_batches(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        planned = retention.count_older_than(session, CUTOFF)
    expected = retention.PurgeCounts(
        rankings=5,
        candidates=15,
        feedback=5,
        labels=5,
        answer_jobs=2,
        slack_events=2,  # the claims of the old queued and answering jobs stay
        escalations=5,
        slack_refusals=3,
        assistant_threads=3,
    )
    assert planned == expected

    deleted = retention.purge_older_than(sessions, CUTOFF, batch_size=2)  # 3 batches of rankings
    assert deleted == expected

    with sessions() as session:
        assert sorted(session.scalars(select(RankingLog.question))) == ["new question 0", "new question 1"]
        assert (count(session, LoggedCandidate), count(session, Feedback), count(session, CandidateLabel)) == (6, 2, 2)
        kept = {(job.ts, job.state) for job in session.scalars(select(AnswerJob))}
        assert kept == {("1.2", "queued"), ("1.3", "answering")} | {
            (f"2.{n}", s) for n, s in enumerate(("answered", "failed", "queued", "answering"))
        }
        assert sorted(session.scalars(select(SlackEvent.ts))) == ["1.2", "1.3", "2.0", "2.1", "2.2", "2.3"]
        assert count(session, Escalation) == 2
        assert list(session.scalars(select(SlackRefusal.question))) == ["Q 2.0"]
        assert list(session.scalars(select(AssistantThread.thread_ts))) == ["2.0"]
        # nothing is left pointing at a deleted ranking
        orphans = select(func.count()).where(~LoggedCandidate.ranking_id.in_(select(RankingLog.id)))
        assert session.scalar(orphans) == 0

    assert retention.purge_older_than(sessions, CUTOFF) == retention.PurgeCounts()  # nothing more to do


def test_the_cascade_holds_on_the_database_itself(sessions: sessionmaker[Session]) -> None:
    """Rankings deleted by anyone else (an SQL console, an old ragbot) still take their children along: the
    foreign keys cascade on both databases (SQLite: foreign keys are switched on per connection)."""
    with sessions.begin() as session:
        session.execute(RankingLog.__table__.delete().where(RankingLog.created_at < CUTOFF))
    with sessions() as session:
        assert (count(session, LoggedCandidate), count(session, Feedback), count(session, CandidateLabel)) == (6, 2, 2)
        assert count(session, Escalation) == 2


def test_a_bad_batch_size_is_refused(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        retention.purge_older_than(sessions, CUTOFF, batch_size=0)
