"""The answer service's typed errors. A failure after the question was logged carries the ranking id as a field,
so the Slack reply and the admin page can quote it; an unexpected failure is raised `from` its cause. Messages
are masked (`redact.mask_secrets`) as they are made: they reach Slack, the ranking log and the admin pages."""

from __future__ import annotations

from redact import mask_secrets


class AnswerError(Exception):
    """A question could not be answered. `ranking_id` is the logged error row (None when nothing was logged);
    `stage` the step it failed in (retrieve, rerank, answer, record), when it got that far."""

    def __init__(self, message: str, *, ranking_id: int | None = None, stage: str | None = None) -> None:
        super().__init__(mask_secrets(message))
        self.ranking_id = ranking_id
        self.stage = stage


class QuestionError(AnswerError, ValueError):
    """The question itself is unusable (empty, too long); nothing is logged."""


class RerankRequiredError(AnswerError, RuntimeError):
    """Reranking was required (--require-rerank / RERANK_REQUIRED) but could not run."""


class RerankerUnavailableError(AnswerError, RuntimeError):
    """Scores were asked for (the playground, a comparison, an evaluation) but the reranker did not load."""


class CompareError(AnswerError, RuntimeError):
    """A preset comparison cannot run; the message says why, for the page."""


class AnswerFailed(AnswerError, RuntimeError):
    """An unexpected failure while answering (the index, the database, a bug); `__cause__` is the original."""

    def __init__(self, cause: BaseException, *, ranking_id: int | None, stage: str | None = None) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}", ranking_id=ranking_id, stage=stage)
