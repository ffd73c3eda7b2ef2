"""The bot's Prometheus metrics (`GET /metrics` on `ragbot serve`), in a registry of their own so several bots
can live in one process (tests)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bot.answering import AnswerError, AskResult

STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class BotMetrics:
    """Events from Slack and what became of them, the durable queue, answers and their stage latencies."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events = Counter(
            "ragbot_slack_events",
            "Questions from Slack by kind (mention, command) and outcome (queued, duplicate, empty, refused).",
            ["kind", "outcome"],
            registry=r,
        )
        self.answers = Counter(
            "ragbot_answers",
            "Questions answered by outcome (ok, no_answer, error, unusable, gave_up).",
            ["outcome"],
            registry=r,
        )
        self.errors = Counter(
            "ragbot_answer_errors",
            "Failed questions by the stage they failed in (retrieve, rerank, answer, record, unknown) and the error.",
            ["stage", "error"],
            registry=r,
        )
        self.stage_seconds = Histogram(
            "ragbot_stage_seconds",
            "Time per answering stage (embed, tokenize, search, rerank, answer, total).",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.feedback = Counter("ragbot_feedback", "Votes on answers (helpful, not_helpful).", ["vote"], registry=r)
        self.queue_depth = Gauge("ragbot_queue_depth", "Questions queued or being answered, all processes.", registry=r)
        self.busy_workers = Gauge("ragbot_busy_workers", "This process's workers answering now.", registry=r)

    def watch(self, queue_depth: Callable[[], float], busy_workers: Callable[[], float]) -> None:
        """Read the queue depth and the busy workers when scraped."""
        self.queue_depth.set_function(queue_depth)
        self.busy_workers.set_function(busy_workers)

    def answered(self, result: AskResult) -> None:
        self.answers.labels(outcome=result.status.value).inc()
        for stage, ms in result.timings_ms.items():
            self.stage_seconds.labels(stage=stage).observe(ms / 1000)

    def failed(self, exc: BaseException) -> None:
        cause = exc.__cause__ or exc
        stage = (exc.stage if isinstance(exc, AnswerError) else None) or "unknown"
        self.answers.labels(outcome="error").inc()
        self.errors.labels(stage=stage, error=type(cause).__name__).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
