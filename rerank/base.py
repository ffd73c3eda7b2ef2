"""The `Reranker` protocol every reranking backend implements (in-process Qwen3, CrossEncoder, HTTP)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"


class RerankerLoadError(RuntimeError):
    """A reranker model could not be loaded; the message says which model and how to fix it."""


@runtime_checkable
class Reranker(Protocol):
    """Scores documents against a query. Scores come back in input order, each in [0, 1]."""

    name: str

    def score(self, query: str, documents: Sequence[str], instruction: str | None = None) -> list[float]: ...


def rank_order(scores: Sequence[float]) -> list[int]:
    """Candidate indexes best score first; ties keep input order (a stable sort), so equal scores rank the
    same way on every call."""
    return sorted(range(len(scores)), key=lambda i: -scores[i])
