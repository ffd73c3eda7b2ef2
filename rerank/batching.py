"""Dynamic batching for the reranker service: requests that arrive together share forward passes.

Engine side only (threads, no HTTP, no asyncio): `rerank.server` puts an HTTP API in front of it, the way
vLLM splits its engine from its API server.

How requests are combined
-------------------------
One worker thread owns the engine. `submit` tokenizes in the caller's thread (the exact sequences the engine
scores, so the caller also learns the token count) and appends the request to a bounded FIFO queue; a full
queue raises `QueueFull` at once (the server answers 503 + Retry-After) instead of piling up memory.

The worker takes the oldest pending request and waits until that request is `max_wait_ms` old for company
(under load requests have already waited while the previous batch ran, so they do not wait again), then
drains the queue in arrival order up to `max_batch_requests` requests and `max_batch_tokens` tokens (always at
least one request). The group's token sequences are concatenated and scored by ONE
`reranker.score_token_ids` call, so the engine's own machinery spans requests: length-sorted forward passes
under its `batch_tokens` budget (that budget, not the number of requests, bounds a pass's memory), left
padding with per-row positions, and one shared-prefix KV cache for what all the sequences share.

Exactness: a request scored alone gets the engine's full per-question prefix cache (system prompt +
instruction + query), exactly as `Qwen3Reranker.score` computes it. In a combined group the prefix common to
every sequence is shorter (the system prompt, plus the instruction when the requests share one); each row then
carries its own query tokens, which the engine runs at their true positions, so scores are the same up to
float rounding (≤ 1e-5 in float32; tests/rerank/test_server.py checks both cases against `score()`). That
trade — a few query tokens recomputed per row for fewer, fuller forward passes — is what pays on a GPU; one
request alone keeps the cheaper per-question cache.

If a combined group fails (say, out of memory), each of its requests is retried on its own, so one bad
request cannot fail its neighbours. Rerankers without `tokenize`/`score_token_ids` (any `Reranker`) are
served one request at a time through `score`.

"Batch" in the counters below means one engine call (one group of requests); its forward passes are the
engine's length-sorted, budgeted passes over the group's union of documents.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["BatchInfo", "BatcherStats", "BatcherStopped", "DynamicBatcher", "QueueFull"]


class QueueFull(RuntimeError):
    """The bounded queue is full: retry later (the HTTP layer answers 503 with Retry-After)."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BatcherStopped(RuntimeError):
    """The batcher is not running (not started yet, or stopped); pending requests fail with this."""


@dataclass
class BatchInfo:
    """What one engine call did; passed to listeners (the server turns it into Prometheus metrics)."""

    requests: int
    pairs: int
    tokens: int
    queue_waits: list[float]  # seconds each request waited between submit and the start of its batch
    seconds: float  # engine time of the batch
    ok: bool


@dataclass
class BatcherStats:
    """Cumulative counters (a snapshot)."""

    submitted: int = 0  # requests accepted into the queue
    rejected: int = 0  # requests refused with QueueFull
    completed: int = 0  # requests answered with scores
    failed: int = 0  # requests answered with an exception
    batches: int = 0  # engine calls
    combined_batches: int = 0  # engine calls that served more than one request
    max_batch_requests_seen: int = 0
    pairs: int = 0  # query-document pairs scored
    tokens: int = 0  # tokens scored (the templated sequences' lengths)
    queue_depth: int = 0  # requests waiting right now
    batch_sizes: dict[int, int] = field(default_factory=dict)  # requests per batch -> number of batches


@dataclass
class _Pending:
    future: Future[list[float]]
    enqueued: float
    sequences: list[list[int]] | None = None  # token path (engines with score_token_ids)
    query: str = ""  # generic path (any Reranker)
    documents: Sequence[str] = ()
    instruction: str | None = None

    @property
    def pairs(self) -> int:
        return len(self.sequences) if self.sequences is not None else len(self.documents)

    @property
    def tokens(self) -> int:
        return sum(len(s) for s in self.sequences) if self.sequences is not None else 0


def _inference_mode() -> Any:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency of every engine here
        return contextlib.nullcontext()
    return torch.inference_mode()


class DynamicBatcher:
    """Runs `reranker` on one worker thread, combining requests that arrive within `max_wait_ms` of each other.

    `submit(query, documents, instruction)` returns a `Future` with the scores in input order; it raises
    `QueueFull` when `max_queue` requests are already waiting (or when `max_queue_tokens` would be passed) and
    `BatcherStopped` when the batcher is not running. See the module docstring for how requests combine.
    """

    def __init__(
        self,
        reranker: Any,
        max_wait_ms: float = 5.0,
        max_queue: int = 256,
        max_batch_requests: int = 64,
        *,
        max_batch_tokens: int | None = None,
        max_queue_tokens: int | None = None,
        retry_after: float = 1.0,
    ) -> None:
        if max_queue < 1 or max_batch_requests < 1:
            raise ValueError("max_queue and max_batch_requests must be at least 1")
        if max_wait_ms < 0:
            raise ValueError("max_wait_ms must be >= 0")
        self.reranker = reranker
        self.name: str = getattr(reranker, "name", type(reranker).__name__)
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = int(max_queue)
        self.max_batch_requests = int(max_batch_requests)
        budget = getattr(reranker, "batch_tokens", None)
        if max_batch_tokens is None and isinstance(budget, int) and budget > 0:
            # A group is scored in one call and all its futures resolve at its end: a cap keeps one group's
            # latency to a handful of forward passes (one oversized request still runs, alone).
            max_batch_tokens = 8 * budget
        self.max_batch_tokens = max_batch_tokens
        self.max_queue_tokens = max_queue_tokens
        self.retry_after = retry_after
        self.token_path = callable(getattr(reranker, "tokenize", None)) and callable(
            getattr(reranker, "score_token_ids", None)
        )

        self._cond = threading.Condition()
        self._queue: collections.deque[_Pending] = collections.deque()
        self._queued_tokens = 0
        self._tokenize_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._running = False
        self._stats = BatcherStats()
        self._listeners: list[Callable[[BatchInfo], None]] = []

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> DynamicBatcher:
        with self._cond:
            if self._running:
                return self
            self._running = True
        self._thread = threading.Thread(target=self._run, name="rerank-batcher", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop taking requests; the batch in progress finishes, requests still queued fail with
        `BatcherStopped`."""
        with self._cond:
            self._running = False
            dropped = list(self._queue)
            self._queue.clear()
            self._queued_tokens = 0
            self._stats.queue_depth = 0
            self._cond.notify_all()
        for p in dropped:
            if not p.future.done():
                p.future.set_exception(BatcherStopped("the reranker service is shutting down"))
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._running

    def __enter__(self) -> DynamicBatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_listener(self, callback: Callable[[BatchInfo], None]) -> None:
        """`callback(BatchInfo)` runs on the worker thread after every batch (keep it cheap)."""
        self._listeners.append(callback)

    # -- submitting --------------------------------------------------------------------------------------

    def tokenize(self, query: str, documents: Sequence[str], instruction: str | None = None) -> list[list[int]]:
        """The token sequences the engine will score (prefix + truncated body + suffix per document)."""
        if not self.token_path:
            raise TypeError(f"{type(self.reranker).__name__} has no tokenize/score_token_ids")
        with self._tokenize_lock:  # a fast tokenizer is not guaranteed to be safe across threads
            return self.reranker.tokenize(query, documents, instruction)

    def is_full(self) -> bool:
        """Whether a request would be refused right now."""
        with self._cond:
            return len(self._queue) >= self.max_queue

    def ensure_room(self) -> None:
        """Raise `QueueFull` (and count the refusal) if the queue is full: a cheap check before tokenizing."""
        with self._cond:
            if len(self._queue) < self.max_queue:
                return
            self._stats.rejected += 1
            waiting = len(self._queue)
        raise QueueFull(
            f"the reranker queue is full ({waiting} requests waiting, limit {self.max_queue}); retry shortly",
            self.retry_after,
        )

    def submit(self, query: str, documents: Sequence[str], instruction: str | None = None) -> Future[list[float]]:
        """Queue one request; the Future resolves to its scores in input order."""
        if isinstance(documents, str):
            raise TypeError("documents must be a sequence of strings, not a single string")
        if not self.running:
            raise BatcherStopped("the reranker service is not running")
        self.ensure_room()
        if self.token_path:
            return self.submit_sequences(self.tokenize(query, documents, instruction))
        pending = _Pending(Future(), time.monotonic(), None, query, list(documents), instruction)
        return self._enqueue(pending)

    def submit_sequences(self, sequences: Sequence[Sequence[int]]) -> Future[list[float]]:
        """Queue already-tokenized sequences (see `tokenize`); the Future resolves to their scores."""
        if not self.token_path:
            raise TypeError(f"{type(self.reranker).__name__} has no tokenize/score_token_ids")
        pending = _Pending(Future(), time.monotonic(), [list(s) for s in sequences])
        return self._enqueue(pending)

    def _enqueue(self, pending: _Pending) -> Future[list[float]]:
        if pending.pairs == 0:
            pending.future.set_result([])
            return pending.future
        tokens = pending.tokens
        with self._cond:
            if not self._running:
                raise BatcherStopped("the reranker service is not running")
            over_tokens = (
                self.max_queue_tokens is not None
                and self._queue
                and self._queued_tokens + tokens > self.max_queue_tokens
            )
            if len(self._queue) >= self.max_queue or over_tokens:
                self._stats.rejected += 1
                raise QueueFull(
                    f"the reranker queue is full ({len(self._queue)} requests waiting, limit {self.max_queue}); "
                    "retry shortly",
                    self.retry_after,
                )
            self._queue.append(pending)
            self._queued_tokens += tokens
            self._stats.submitted += 1
            self._stats.queue_depth = len(self._queue)
            self._cond.notify_all()
        return pending.future

    # -- counters ----------------------------------------------------------------------------------------

    def stats(self) -> BatcherStats:
        with self._cond:
            s = self._stats
            return BatcherStats(**{**s.__dict__, "batch_sizes": dict(s.batch_sizes), "queue_depth": len(self._queue)})

    # -- the worker --------------------------------------------------------------------------------------

    def _take_group(self) -> list[_Pending] | None:
        """Block until there is work; return the next group (None when stopping)."""
        with self._cond:
            while self._running and not self._queue:
                self._cond.wait()
            if not self._running:
                return None
            deadline = self._queue[0].enqueued + self.max_wait
            while (
                self._running
                and len(self._queue) < self.max_batch_requests
                and (self.max_batch_tokens is None or self._queued_tokens < self.max_batch_tokens)
            ):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            if not self._running:
                return None
            group: list[_Pending] = []
            tokens = 0
            while self._queue and len(group) < self.max_batch_requests:
                nxt = self._queue[0]
                if group and not self.token_path:
                    break  # a plain Reranker scores one request per call
                if group and self.max_batch_tokens is not None and tokens + nxt.tokens > self.max_batch_tokens:
                    break
                self._queue.popleft()
                self._queued_tokens -= nxt.tokens
                if not nxt.future.set_running_or_notify_cancel():
                    continue  # cancelled by its caller while waiting
                group.append(nxt)
                tokens += nxt.tokens
            self._stats.queue_depth = len(self._queue)
            return group

    def _run(self) -> None:
        while True:
            group = self._take_group()
            if group is None:
                return
            if not group:
                continue
            try:
                self._process(group)
            except BaseException as exc:  # never leave a caller waiting on a dead worker
                log.exception("reranker batch failed unexpectedly")
                for p in group:
                    if not p.future.done():
                        p.future.set_exception(exc)

    def _score(self, group: list[_Pending]) -> list[list[float]]:
        if not self.token_path:
            p = group[0]
            return [list(self.reranker.score(p.query, p.documents, p.instruction))]
        sequences = [seq for p in group for seq in p.sequences or ()]
        with _inference_mode():
            scores = list(self.reranker.score_token_ids(sequences))
        if len(scores) != len(sequences):
            raise RuntimeError(f"the engine returned {len(scores)} scores for {len(sequences)} documents")
        out, start = [], 0
        for p in group:
            out.append(scores[start : start + p.pairs])
            start += p.pairs
        return out

    def _process(self, group: list[_Pending]) -> None:
        started = time.monotonic()
        waits = [started - p.enqueued for p in group]
        try:
            results: list[list[float] | BaseException] = list(self._score(group))
            ok = True
        except Exception as exc:
            ok = False
            if len(group) == 1:
                results = [exc]
            else:  # isolate the failure: every request on its own
                results = []
                for p in group:
                    try:
                        results.append(self._score([p])[0])
                    except Exception as single_exc:
                        results.append(single_exc)
        seconds = time.monotonic() - started
        ok_results = [(p, r) for p, r in zip(group, results, strict=True) if not isinstance(r, BaseException)]
        info = BatchInfo(
            requests=len(group),
            pairs=sum(p.pairs for p, _ in ok_results),  # scored successfully
            tokens=sum(p.tokens for p, _ in ok_results),
            queue_waits=waits,
            seconds=seconds,
            ok=ok,
        )
        # Counters and listeners first: whoever reads them after their answer sees this batch counted.
        with self._cond:
            s = self._stats
            s.completed += len(ok_results)
            s.failed += len(group) - len(ok_results)
            s.batches += 1
            s.combined_batches += len(group) > 1
            s.max_batch_requests_seen = max(s.max_batch_requests_seen, len(group))
            s.batch_sizes[len(group)] = s.batch_sizes.get(len(group), 0) + 1
            s.pairs += info.pairs
            s.tokens += info.tokens
        for listener in self._listeners:
            try:
                listener(info)
            except Exception:  # metrics must never take the worker down
                log.exception("batch listener failed")
        for p, result in zip(group, results, strict=True):
            if isinstance(result, BaseException):
                p.future.set_exception(result)
            else:
                p.future.set_result(result)
