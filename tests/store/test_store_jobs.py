"""Durable work in the database, on SQLite and PostgreSQL: a job is held by one worker at a time, leases run
out, a shutdown hands jobs back, and concurrent workers in separate connections each take a job once."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import Engine, select, update

import store
from store.models import AnswerJob, utcnow


def queue(sessions, n: int) -> list[int]:
    with sessions.begin() as session:
        return [
            store.enqueue_job(session, kind="mention", question=f"Q{i}", channel="C1", ts=f"{i}.0").id for i in range(n)
        ]


def states(sessions) -> dict[int, tuple[str, int, str | None]]:
    with sessions() as session:
        return {j.id: (j.state, j.attempts, j.lease_owner) for j in session.scalars(select(AnswerJob))}


def test_a_job_is_held_by_one_worker_until_it_finishes_or_its_lease_runs_out(migrated: Engine) -> None:
    sessions = store.session_factory(migrated)
    first, second = queue(sessions, 2)
    a = store.take_job(sessions, "worker-a", lease_s=60)
    b = store.take_job(sessions, "worker-b", lease_s=60)
    assert (a.id, a.attempts, b.id) == (first, 1, second)
    assert store.take_job(sessions, "worker-c", lease_s=60) is None  # both are held
    with sessions() as session:
        assert store.open_jobs(session) == 2
    assert not store.finish_job(sessions, first, "worker-b", "answered")  # not b's job
    assert store.finish_job(sessions, first, "worker-a", "answered", ranking_id=7)
    # worker-b dies: its lease runs out and another worker takes the job, one attempt more
    with sessions.begin() as session:
        session.execute(update(AnswerJob).where(AnswerJob.id == second).values(lease_until=utcnow() - timedelta(1)))
    again = store.take_job(sessions, "worker-c", lease_s=60)
    assert (again.id, again.attempts, again.lease_owner) == (second, 2, "worker-c")
    assert not store.finish_job(sessions, second, "worker-b", "answered")  # the old holder lost it
    assert states(sessions) == {first: ("answered", 1, None), second: ("answering", 2, "worker-c")}


def test_renewed_leases_hold_and_a_shutdown_hands_jobs_back_uncounted(migrated: Engine) -> None:
    sessions = store.session_factory(migrated)
    (job_id,) = queue(sessions, 1)
    store.take_job(sessions, "worker-a", lease_s=1)
    assert store.renew_leases(sessions, "worker-a", lease_s=60, job_ids=[]) == 0
    assert store.renew_leases(sessions, "worker-a", lease_s=60, job_ids=[job_id]) == 1
    time.sleep(1.2)
    assert store.take_job(sessions, "worker-b", lease_s=60) is None  # renewed: still worker-a's
    assert store.release_jobs(sessions, "worker-a") == 1
    assert states(sessions) == {job_id: ("queued", 0, None)}
    assert store.take_job(sessions, "worker-b", lease_s=60).attempts == 1


def test_concurrent_workers_take_each_job_once(migrated: Engine) -> None:
    sessions = store.session_factory(migrated)
    queued = set(queue(sessions, 30))
    taken: list[int] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        while (job := store.take_job(sessions, name, lease_s=60)) is not None:
            with lock:
                taken.append(job.id)
            store.finish_job(sessions, job.id, name, "answered")

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(taken) == sorted(queued)  # every job once, none twice
    assert {state for state, _, _ in states(sessions).values()} == {"answered"}
