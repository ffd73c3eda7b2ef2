"""The answer workers: threads that take durable jobs from the database (`store.jobs`) and answer them, off
Slack's request threads. A question acknowledged in Slack is a queued row first, so a restart, a crash or a
deploy loses nothing: queued jobs wait, a dead process's jobs come back when its lease runs out, and a
graceful stop hands what it has not started back to the queue."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

import store
from redact import mask_secrets

log = logging.getLogger(__name__)

# A job taken this often without being finished (its process died each time) is given up, with a message.
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Outcome:
    """How a job ended for its asker: answered, or told it failed (`error` says why)."""

    answered: bool
    ranking_id: int | None = None
    error: str | None = None


def worker_identity() -> str:
    """Who holds a lease: host, process and a random part (a restarted process is someone else)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class AnswerWorkers:
    """`workers` threads answering jobs through `handle(job)`, which answers or tells the asker it failed and
    returns the `Outcome` (if it raises, the job is marked failed with the error). A job taken more than
    `MAX_ATTEMPTS` times goes to `give_up(job)` instead, which tells the asker it failed.

    Leases last `lease_s` and are renewed every third of that while a job runs, so only a process that stopped
    loses its jobs. `wake()` starts an idle worker at once (a new question); otherwise they look every
    `poll_s`."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        handle: Callable[[store.AnswerJob], Outcome],
        give_up: Callable[[store.AnswerJob], None],
        workers: int = 4,
        *,
        lease_s: float = 30.0,
        poll_s: float = 1.0,
    ) -> None:
        self.sessions = sessions
        self.handle = handle
        self.give_up = give_up
        self.workers = workers
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.owner = worker_identity()
        self._wake = threading.Condition()
        self._pending_wakes = 0
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running: set[int] = set()  # jobs taken and not yet marked done: the heartbeat renews these
        self._busy_lock = threading.Lock()

    # -- life cycle --------------------------------------------------------------------------------
    def start(self) -> AnswerWorkers:
        """Start the threads (once); they take what earlier processes left queued right away."""
        with self._busy_lock:
            if self._threads or self._stopping.is_set():
                return self
            for n in range(self.workers):
                thread = threading.Thread(target=self._run, name=f"ragbot-answer-{n}", daemon=True)
                thread.start()
                self._threads.append(thread)
            heartbeat = threading.Thread(target=self._heartbeat, name="ragbot-lease", daemon=True)
            heartbeat.start()
            self._threads.append(heartbeat)
        return self

    def stop(self, grace_s: float = 25.0) -> int:
        """Take no new jobs, let running answers finish for up to `grace_s` seconds, then hand the jobs still
        running back to the queue (another process, or this one restarted, answers them). Returns how many
        were handed back."""
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        deadline = time.monotonic() + grace_s
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        try:
            handed_back = store.release_jobs(self.sessions, self.owner)
        except Exception:
            log.exception("Could not hand unfinished jobs back; their leases run out instead")
            return 0
        if handed_back:
            log.warning("Handed %d unfinished question(s) back to the queue", handed_back)
        return handed_back

    def wake(self) -> None:
        """A job was queued: let an idle worker take it now (starting the workers on the first one)."""
        self.start()
        with self._wake:
            self._pending_wakes += 1
            self._wake.notify()

    @property
    def busy(self) -> int:
        with self._busy_lock:
            return len(self._running)

    # -- the threads -------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                job = store.take_job(self.sessions, self.owner, self.lease_s)
            except Exception:  # the database is away: wait and look again
                log.warning("Could not take work from the database", exc_info=True)
                job = None
            if job is None:
                self._idle()
                continue
            with self._busy_lock:
                self._running.add(job.id)
            try:
                self._work(job)
            finally:
                with self._busy_lock:
                    self._running.discard(job.id)

    def _idle(self) -> None:
        with self._wake:
            if self._pending_wakes == 0 and not self._stopping.is_set():
                self._wake.wait(self.poll_s)
            self._pending_wakes = max(0, self._pending_wakes - 1)

    def _work(self, job: store.AnswerJob) -> None:
        if job.attempts > MAX_ATTEMPTS:
            log.error("Job %s was taken %d times without finishing; giving up", job.id, job.attempts - 1)
            self._finish(job, "failed", error=f"gave up after {job.attempts - 1} attempts")
            self._quietly(self.give_up, job)
            return
        try:
            outcome = self.handle(job)
        except Exception as exc:
            log.exception("Job %s failed", job.id)
            self._finish(job, "failed", error=f"{type(exc).__name__}: {exc}")
            return
        state = "answered" if outcome.answered else "failed"
        self._finish(job, state, ranking_id=outcome.ranking_id, error=outcome.error)

    def _finish(self, job: store.AnswerJob, state: str, **fields: object) -> None:
        """Mark the job done. While the database is away, keep trying (the job stays this worker's, its lease
        renewed once the database is back), so an answer already posted is not given again. The error kept with
        the job is masked: an exception's text may carry a configured URL's credentials."""
        if isinstance(fields.get("error"), str):
            fields["error"] = mask_secrets(fields["error"])
        wait = 0.5
        while True:
            try:
                if not store.finish_job(self.sessions, job.id, self.owner, state, **fields):  # type: ignore[arg-type]
                    log.warning("Job %s was taken over by another process before it finished here", job.id)
                return
            except Exception:
                log.warning("Could not mark job %s %s; trying again in %.1f s", job.id, state, wait, exc_info=True)
            if self._stopping.wait(wait):  # stopping: its lease runs out and it is taken again
                return
            wait = min(wait * 2, 10.0)

    def _heartbeat(self) -> None:
        while not self._stopping.wait(self.lease_s / 3):
            with self._busy_lock:
                running = list(self._running)
            try:
                store.renew_leases(self.sessions, self.owner, self.lease_s, running)
            except Exception:
                log.warning("Could not renew the leases of running jobs", exc_info=True)

    @staticmethod
    def _quietly(action: Callable[[store.AnswerJob], None], job: store.AnswerJob) -> None:
        try:
            action(job)
        except Exception:
            log.exception("Could not tell the asker of job %s", job.id)
