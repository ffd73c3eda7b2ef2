"""A job whose answering raised keeps the error with it, masked: an exception's text can quote a configured
URL with its credentials, and the job table is read by operators and kept until purged."""

from __future__ import annotations

import time
from pathlib import Path

import store
from bot.slack.worker import AnswerWorkers


def test_a_failed_jobs_error_is_kept_without_the_credentials(tmp_path: Path) -> None:
    engine = store.make_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
    store.upgrade_database(engine)
    sessions = store.session_factory(engine)
    with sessions.begin() as session:
        job_id = store.enqueue_job(session, kind="mention", question="q?", channel="C1", ts="1.0").id

    def handle(job: store.AnswerJob):
        raise ConnectionError("POST https://bot:s3cret@rerank.internal:8080/v1/rerank?api_key=k3y failed")

    workers = AnswerWorkers(sessions, handle, lambda job: None, workers=1, poll_s=0.05).start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with sessions() as session:
                job = session.get(store.AnswerJob, job_id)
                if job.state == "failed":
                    break
            time.sleep(0.05)
    finally:
        workers.stop(1.0)
        engine.dispose()
    assert job.state == "failed"
    assert "ConnectionError" in job.error and "rerank.internal:8080" in job.error
    assert "s3cret" not in job.error and "k3y" not in job.error
