"""A bounded pool for the answer pipeline, off Slack's request threads. It queues past its size and says
where a new question stands, so the listener can tell the user they are queued (never dropped)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

log = logging.getLogger(__name__)


class AnswerPool:
    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ragbot-answer")
        self._lock = threading.Lock()
        self._in_flight = 0

    def submit(self, job: Callable[[], None]) -> tuple[Future[None], int]:
        """Run `job` on the pool; returns its future and its place in the queue (0: it starts now)."""
        with self._lock:
            self._in_flight += 1
            position = max(0, self._in_flight - self.workers)

        def run() -> None:
            try:
                job()
            except Exception:  # the job reports to the user itself; this only keeps the pool alive
                log.exception("Answer job failed")
            finally:
                with self._lock:
                    self._in_flight -= 1

        return self._executor.submit(run), position

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def shutdown(self, wait: bool = True) -> None:
        self._executor.shutdown(wait=wait)
