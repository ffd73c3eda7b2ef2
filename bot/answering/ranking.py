"""Reranking candidates: the reranker loaded once on first use, and the one way scores become a ranking."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from bot.answering.results import RankedCandidate, RerankerStatus
from redact import mask_secrets
from rerank import Reranker, RerankerLoadError, rank_order
from retrieval import Candidate

log = logging.getLogger(__name__)


def first_sentence(text: str) -> str:
    """The gist of an error for a one-line status; the whole message is logged once where it happens."""
    head, sep, _ = text.partition(". ")
    return head + ("." if sep else "")


class RerankerSlot:
    """Loads the reranker on first use, once, even when several questions arrive together (concurrent model loads
    waste memory and are not safe in transformers); remembers why it could not be loaded instead of retrying per
    question."""

    def __init__(self, loader: Callable[[], Reranker]) -> None:
        self._loader = loader
        self._reranker: Reranker | None = None
        self._loading = threading.Lock()
        self.error: str | None = None

    def get(self) -> Reranker | None:
        if self._reranker is None and self.error is None:
            with self._loading:
                if self._reranker is None and self.error is None:
                    try:
                        self._reranker = self._loader()
                    except RerankerLoadError as exc:
                        self.error = mask_secrets(str(exc))  # shown on /readyz and the admin pages
                        log.warning("Reranking disabled: %s", self.error)
        return self._reranker

    def status(self) -> RerankerStatus:
        reranker = self.get()
        if reranker is None:
            return RerankerStatus(None, self.error or "the reranker did not load")
        return RerankerStatus(reranker.name, None)

    def close(self) -> None:
        """Release what the reranker holds open (an HTTP client's connections); engines without `close` hold none."""
        close = getattr(self._reranker, "close", None)
        if callable(close):
            close()


def ranked(candidates: Sequence[Candidate], scores: Sequence[float]) -> list[RankedCandidate]:
    """The candidates best score first, with their rerank rank and score; ties keep retrieval order."""
    return [
        RankedCandidate(candidates[i], rerank_rank=rank, rerank_score=float(scores[i]))
        for rank, i in enumerate(rank_order(scores), start=1)
    ]


def rerank_candidates(
    reranker: Reranker, query: str, candidates: Sequence[Candidate], instruction: str
) -> list[RankedCandidate]:
    """Score `candidates` against `query` with `instruction` and rank them (an empty list needs no model)."""
    if not candidates:
        return []
    return ranked(candidates, reranker.score(query, [c.passage() for c in candidates], instruction))
