"""Ranking metrics over one question's ranked candidates (chunks).

A chunk is relevant when its document is: relevance comes as `{document key: grade}` (grade 1 for a plain
relevant list). A document counts once: later chunks of an already-counted document add nothing to nDCG.

- hit@k: a relevant chunk is among the first k (hit@3: it reaches the answer's three sources; hit@5 and hit@10:
  retrieval hands the reranker far more than three, so these say what it has to work with);
- MRR@k: 1 / rank of the first relevant chunk within k (0 when none);
- nDCG@k: DCG of the first k with gain 2^grade - 1 and log2(rank + 1) discount, over the ideal DCG of the
  relevant documents' grades sorted high to low;
- recall: share of relevant documents found anywhere in the candidates (the ceiling reranking cannot lift).
Ties are broken by the order given: callers sort stably by score, so equal scores keep retrieval order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

DocKey = str


@dataclass(frozen=True)
class QuestionMetrics:
    hit_at_1: float
    hit_at_3: float
    hit_at_5: float
    hit_at_10: float
    mrr_at_10: float
    ndcg_at_10: float
    recall: float
    first_relevant_rank: int | None  # 1-based, None when no candidate is relevant


def first_relevant_rank(ranked: Sequence[DocKey | None], relevance: Mapping[DocKey, float]) -> int | None:
    return next((i for i, doc in enumerate(ranked, start=1) if doc is not None and relevance.get(doc, 0) > 0), None)


def hit_at(ranked: Sequence[DocKey | None], relevance: Mapping[DocKey, float], k: int) -> float:
    rank = first_relevant_rank(ranked, relevance)
    return 1.0 if rank is not None and rank <= k else 0.0


def mrr_at(ranked: Sequence[DocKey | None], relevance: Mapping[DocKey, float], k: int) -> float:
    rank = first_relevant_rank(ranked, relevance)
    return 1.0 / rank if rank is not None and rank <= k else 0.0


def ndcg_at(ranked: Sequence[DocKey | None], relevance: Mapping[DocKey, float], k: int) -> float:
    seen: set[DocKey] = set()
    dcg = 0.0
    for i, doc in enumerate(ranked[:k], start=1):
        grade = relevance.get(doc, 0) if doc is not None and doc not in seen else 0
        if doc is not None:
            seen.add(doc)
        dcg += (2**grade - 1) / math.log2(i + 1)
    ideal_grades = sorted((g for g in relevance.values() if g > 0), reverse=True)[:k]
    ideal = sum((2**g - 1) / math.log2(i + 1) for i, g in enumerate(ideal_grades, start=1))
    return dcg / ideal if ideal > 0 else 0.0


def recall(ranked: Sequence[DocKey | None], relevance: Mapping[DocKey, float]) -> float:
    relevant = {doc for doc, grade in relevance.items() if grade > 0}
    return len(relevant & {doc for doc in ranked if doc is not None}) / len(relevant) if relevant else 0.0


def question_metrics(ranked: Sequence[DocKey | None], relevance: Mapping[DocKey, float]) -> QuestionMetrics:
    return QuestionMetrics(
        hit_at_1=hit_at(ranked, relevance, 1),
        hit_at_3=hit_at(ranked, relevance, 3),
        hit_at_5=hit_at(ranked, relevance, 5),
        hit_at_10=hit_at(ranked, relevance, 10),
        mrr_at_10=mrr_at(ranked, relevance, 10),
        ndcg_at_10=ndcg_at(ranked, relevance, 10),
        recall=recall(ranked, relevance),
        first_relevant_rank=first_relevant_rank(ranked, relevance),
    )


def percentile(values: Sequence[float], q: float) -> float:
    """numpy's linear-interpolated percentile, q in [0, 100]; 0.0 for no values (a stage nobody timed)."""
    return float(np.percentile(values, q)) if len(values) else 0.0
