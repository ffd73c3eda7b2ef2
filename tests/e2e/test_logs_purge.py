"""Questions are not kept forever: `ragbot logs purge --older-than 90d` as an operator runs it, and `ragbot serve`
purging on its own with RANKING_RETENTION_DAYS, on the database a real process uses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import store
from store.models import AnswerJob, RankingLog, SlackEvent, utcnow
from tests.bot.slack.test_serve_command import free_port, wait_for_health
from tests.e2e.test_cli import run_cli


def add_question(session: Session, age: timedelta, question: str, ts: str, job_state: str = "answered") -> None:
    """A question as Slack leaves it: its ranking, its answer job and its Slack claim, `age` ago."""
    created = utcnow() - age
    ranking = store.record_ranking(
        session,
        preset=None,
        instruction="i",
        collection="kb",
        question=question,
        channel="C1",
        user="U1",
        answer="a",
        status="ok",
        error=None,
        rerank_status="ok",
        reranker="tiny",
        timings_ms={},
        retrieval_mode="hybrid",
        candidates=[],
    )
    ranking.created_at = created
    session.add(AnswerJob(kind="mention", state=job_state, question=question, channel="C1", ts=ts, created_at=created))
    session.add(SlackEvent(event_id=f"Ev-{question}", channel="C1", ts=ts, created_at=created))


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """The database a ragbot process here uses (the file `env` names too), with two questions of 120 days ago
    (one still queued, say a job whose process died) and one of 3 days ago."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'ragbot.db'}")
    monkeypatch.chdir(tmp_path)
    engine = store.make_engine(os.environ["DATABASE_URL"])
    store.upgrade_database(engine)
    factory = store.session_factory(engine)
    with factory.begin() as session:
        add_question(session, timedelta(days=120), "old: the customer ACME wants SSO", "1.1")
        add_question(session, timedelta(days=120), "old and still queued", "1.2", job_state="queued")
        add_question(session, timedelta(days=3), "new: can we export invoices?", "2.1")
    yield factory
    engine.dispose()


def remaining(sessions: sessionmaker[Session]) -> tuple[list[str], list[str], int]:
    with sessions() as session:
        return (
            sorted(session.scalars(select(RankingLog.question))),
            sorted(session.scalars(select(AnswerJob.question))),
            len(session.scalars(select(SlackEvent.id)).all()),
        )


def test_logs_purge_deletes_old_questions_and_says_what(sessions, capsys) -> None:
    code, out, _ = run_cli(capsys, "logs", "purge", "--older-than", "90d", "--dry-run")
    assert code == 0
    assert (
        "Would delete 2 rankings (0 candidates, 0 feedback, 0 labels, 0 escalations), 1 finished answer jobs, "
        "1 Slack events, 0 Slack refusals, 0 assistant threads"
    ) in out
    assert remaining(sessions)[0] == [
        "new: can we export invoices?",
        "old and still queued",
        "old: the customer ACME wants SSO",
    ]

    code, out, _ = run_cli(capsys, "logs", "purge", "--older-than", "12w")
    assert code == 0 and "Deleted 2 rankings" in out and "1 finished answer jobs, 1 Slack events" in out
    assert "older than 12w (before " in out
    rankings, jobs, events = remaining(sessions)
    assert rankings == ["new: can we export invoices?"]
    assert jobs == ["new: can we export invoices?", "old and still queued"]  # a queued job is never deleted
    assert events == 2  # so is its Slack claim

    code, out, _ = run_cli(capsys, "logs", "purge", "--older-than", "90d")
    assert code == 0 and "Deleted 0 rankings" in out


@pytest.mark.parametrize("span", ["90", "90 days", "0d", "-5d", "3m", "d", "1.5d"])
def test_a_span_that_is_not_one_is_a_clear_error(sessions, capsys, span: str) -> None:
    code, _, err = run_cli(capsys, "logs", "purge", "--older-than", span)
    assert code == 2 and "--older-than" in err and "e.g. 90d" in " ".join(err.split())
    assert len(remaining(sessions)[0]) == 3


def test_serve_purges_on_its_own_with_ranking_retention_days(env: Path, sessions) -> None:
    port = free_port()
    command = Path(sys.executable).with_name("ragbot")
    process = subprocess.Popen(
        [str(command), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "RANKING_RETENTION_DAYS": "90"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_health(process, port)
        deadline = time.time() + 30
        while remaining(sessions)[0] != ["new: can we export invoices?"]:
            assert time.time() < deadline, "serve did not purge at start"
            time.sleep(0.3)
        assert remaining(sessions)[1] == ["new: can we export invoices?", "old and still queued"]
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output
    assert "Retention: deleted 2 rankings" in output
