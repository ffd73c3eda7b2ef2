"""The rerank service's Prometheus metrics: requests by status, pairs, tokens, batch sizes, queue wait, latency."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from rerank.batching import BatchInfo

__all__ = ["RerankMetrics"]


class RerankMetrics:
    """The service's Prometheus metrics, in a registry of their own (several apps can live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("rerank_requests", "POST /v1/rerank requests by HTTP status.", ["status"], registry=r)
        self.pairs = Counter("rerank_pairs", "Query-document pairs scored.", registry=r)
        self.tokens = Counter("rerank_tokens", "Tokens scored (templated sequences).", registry=r)
        self.batch_requests = Histogram(
            "rerank_batch_requests",
            "Requests combined in one engine batch.",
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128),
            registry=r,
        )
        self.batch_pairs = Histogram(
            "rerank_batch_pairs",
            "Query-document pairs in one engine batch.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000),
            registry=r,
        )
        self.batch_tokens = Histogram(
            "rerank_batch_tokens",
            "Tokens in one engine batch.",
            buckets=(256, 1024, 4096, 16384, 65536, 262144, 1048576),
            registry=r,
        )
        self.batch_seconds = Histogram(
            "rerank_batch_seconds",
            "Engine time of one batch.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.queue_wait = Histogram(
            "rerank_queue_wait_seconds",
            "Time a request waited in the queue before its batch started.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.latency = Histogram(
            "rerank_request_seconds",
            "POST /v1/rerank latency, from request to response.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.failed_batches = Counter("rerank_failed_batches", "Engine batches that raised.", registry=r)
        self.queue_depth = Gauge("rerank_queue_depth", "Requests waiting for the engine.", registry=r)
        self.ready = Gauge("rerank_ready", "1 once the model is loaded and warmed up.", registry=r)

    def observe_batch(self, info: BatchInfo) -> None:
        self.batch_requests.observe(info.requests)
        self.batch_pairs.observe(info.pairs)
        self.batch_tokens.observe(info.tokens)
        self.batch_seconds.observe(info.seconds)
        for wait in info.queue_waits:
            self.queue_wait.observe(wait)
        self.pairs.inc(info.pairs)
        self.tokens.inc(info.tokens)
        if not info.ok:
            self.failed_batches.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
