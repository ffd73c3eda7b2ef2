"""The reranking service behind `/v1/rerank`: loads the engine on a background thread, warms it up, then
answers validated requests through its dynamic batcher. Failures come back as `ApiError`s (status, message,
type) for the HTTP layer to send; nothing here knows HTTP requests."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from rerank.base import rank_order
from rerank.batching import BatcherStopped, DynamicBatcher, QueueFull
from rerank.metrics import RerankMetrics
from rerank.protocol import RerankDocument, RerankRequest, RerankResponse, RerankResult, RerankUsage

log = logging.getLogger(__name__)
LOADING_RETRY_AFTER = 5


class ApiError(Exception):
    """A request that ends in an error response (`error_response`): HTTP status, message, error type."""

    def __init__(self, status: int, message: str, type_: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.retry_after = retry_after


class RerankService:
    """The model behind the API: loads on a background thread, warms up, then serves through its batcher."""

    def __init__(
        self,
        batcher_factory: Callable[[], DynamicBatcher],
        model_name: str,
        metrics: RerankMetrics,
        *,
        warmup: bool = True,
    ) -> None:
        self.batcher_factory = batcher_factory
        self.model_name = model_name
        self.metrics = metrics
        self.warmup = warmup
        self.batcher: DynamicBatcher | None = None
        self.ready = threading.Event()
        self.failed = threading.Event()
        self.error: BaseException | None = None
        self.log_load_errors = True  # run_rerank_server raises the error instead
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def start_loading(self) -> None:
        """Start loading on a background thread (idempotent)."""
        with self._lock:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(target=self._load, name="rerank-load", daemon=True)
            self._thread.start()

    def _load(self) -> None:
        try:
            started = time.perf_counter()
            batcher = self.batcher_factory()
            if self.warmup:
                # Kernel selection and allocator growth happen here, not on the first request (two documents:
                # the shared-prefix path runs too). Straight on the engine, so the counters start at zero.
                reranker = batcher.reranker
                reranker.score("warm-up", ["warm-up", "a warm-up document"])
            batcher.add_listener(self.metrics.observe_batch)
            self.metrics.queue_depth.set_function(lambda: batcher.stats().queue_depth)
            with self._lock:
                if self._closed:
                    return
                self.batcher = batcher.start()
            self.metrics.ready.set(1)
            self.ready.set()
            log.info("reranker %s ready in %.1f s", self.model_name, time.perf_counter() - started)
        except BaseException as exc:
            self.error = exc
            self.failed.set()
            if self.log_load_errors:
                log.error("Reranker %s failed to load: %s", self.model_name, exc)

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the model is ready (True) or failed / timed out (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.ready.is_set() and not self.failed.is_set():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            self.ready.wait(0.05 if remaining is None else min(0.05, remaining))
        return self.ready.is_set()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            batcher = self.batcher
        if batcher is not None:
            batcher.stop()
        self.metrics.ready.set(0)

    def check_ready(self) -> DynamicBatcher:
        """The batcher, or an ApiError (503) saying the model is loading or failed to load."""
        self.start_loading()
        batcher = self.batcher
        if batcher is None or not self.ready.is_set():
            if self.failed.is_set():
                raise ApiError(503, f"the reranker model failed to load: {self.error}", "model_unavailable")
            raise ApiError(503, "the reranker model is still loading", "model_loading", LOADING_RETRY_AFTER)
        return batcher

    async def rerank(self, req: RerankRequest) -> RerankResponse:
        """Score `req`'s documents and return them best first (ties in input order), `top_n` of them."""
        batcher = self.check_ready()
        try:
            batcher.ensure_room()  # refuse before spending CPU on tokenizing
            if batcher.token_path:
                sequences = await asyncio.to_thread(batcher.tokenize, req.query, req.documents, req.instruction)
                total_tokens = sum(len(s) for s in sequences)
                future = batcher.submit_sequences(sequences)
            else:
                total_tokens = 0
                future = batcher.submit(req.query, req.documents, req.instruction)
        except QueueFull as exc:
            raise _overloaded(exc) from exc
        except BatcherStopped as exc:
            raise ApiError(503, str(exc), "service_unavailable", LOADING_RETRY_AFTER) from exc
        try:
            scores = await asyncio.wrap_future(future)
        except BatcherStopped as exc:
            raise ApiError(503, str(exc), "service_unavailable", LOADING_RETRY_AFTER) from exc
        except Exception as exc:
            log.exception("reranking failed")
            raise ApiError(500, f"the reranker failed: {type(exc).__name__}: {exc}", "internal_error") from exc

        results = [
            RerankResult(
                index=i,
                relevance_score=float(scores[i]),
                document=RerankDocument(text=req.documents[i]) if req.return_documents else None,
            )
            for i in rank_order(scores)[: req.top_n]  # top_n None: every document
        ]
        return RerankResponse(model=self.model_name, results=results, usage=RerankUsage(total_tokens=total_tokens))


def _overloaded(exc: QueueFull) -> ApiError:
    return ApiError(503, str(exc), "overloaded_error", exc.retry_after)
