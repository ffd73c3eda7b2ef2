"""Retention while `ragbot serve` runs: with RANKING_RETENTION_DAYS set, questions older than that many days
are purged at start and then every few hours (`store.purge_older_than`, the same purge as `ragbot logs purge`).
Every serve process runs it; purges of the same rows by two processes are harmless (each deletes what is left)."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

import store
from bot.app.components import Components
from store.models import utcnow

log = logging.getLogger(__name__)

EVERY_S = 6 * 3600.0


class RetentionWorker:
    """A daemon thread that purges what is older than `keep` now and every `every_s` seconds. A failed purge
    (the database is away) is logged and tried again at the next turn, never taking the server down."""

    def __init__(self, sessions: sessionmaker[Session], keep: timedelta, every_s: float = EVERY_S) -> None:
        self._sessions = sessions
        self.keep = keep
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0  # purges finished, for tests and logs

    def run_once(self) -> store.PurgeCounts:
        """Purge now; returns what was deleted."""
        cutoff = utcnow() - self.keep
        counts = store.purge_older_than(self._sessions, cutoff)
        self.runs += 1
        if counts.total:
            log.warning(
                "Retention: deleted %d rankings (%d candidates, %d feedback, %d labels, %d escalations), "
                "%d answer jobs, %d Slack events, %d Slack refusals and %d assistant threads from before %s",
                counts.rankings,
                counts.candidates,
                counts.feedback,
                counts.labels,
                counts.escalations,
                counts.answer_jobs,
                counts.slack_events,
                counts.slack_refusals,
                counts.assistant_threads,
                f"{cutoff:%Y-%m-%d %H:%M} UTC",
            )
        return counts

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ragbot-retention", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the batch at hand (each batch is its own transaction, so nothing is left half done)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.warning("Retention: the purge failed; trying again in %.0f s", self.every_s, exc_info=True)
            self._stop.wait(self.every_s)


def retention_for(parts: Components) -> RetentionWorker | None:
    """The worker RANKING_RETENTION_DAYS asks for; None when it is unset (everything is kept)."""
    days = parts.settings.ranking_retention_days
    return RetentionWorker(parts.sessions, timedelta(days=days)) if days else None
