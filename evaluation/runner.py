"""Runs an evaluation: retrieve once per question, rerank the same candidates with each configuration, score."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from evaluation.dataset import EvalItem
from evaluation.metrics import QuestionMetrics, percentile, question_metrics
from rerank import Reranker, rank_order
from retrieval import Candidate, Retriever

BASELINE = "retrieval only"
METRICS = ("hit_at_1", "hit_at_3", "hit_at_5", "hit_at_10", "mrr_at_10", "ndcg_at_10", "recall")


@dataclass(frozen=True)
class EvalConfig:
    """One way to rank: `instruction` None means retrieval order (the baseline); `per_question` uses each
    question's own preset (its `preset` or `channel`)."""

    name: str
    instruction: str | None = None
    per_question: bool = False


@dataclass
class ConfigRanking:
    """How one configuration ordered one question's candidates, and what that order scores."""

    order: list[int]  # candidate indexes, best first
    metrics: QuestionMetrics
    latency_ms: float
    scores: list[float] | None = None


@dataclass
class QuestionRun:
    item: EvalItem
    candidates: list[Candidate]
    keys: list[str | None]
    by_config: dict[str, ConfigRanking] = field(default_factory=dict)

    def top(self, config: str, n: int = 3) -> list[str]:
        return [_label(self.candidates[i]) for i in self.by_config[config].order[:n]]


@dataclass
class ConfigSummary:
    name: str
    means: dict[str, float]
    rerank_p50_ms: float
    rerank_p95_ms: float


def _label(c: Candidate) -> str:
    return f"{c.title} › {c.section}" if c.section else c.title


def doc_key(candidate: Candidate, relevance: dict[str, float]) -> str | None:
    """The relevance entry this candidate's document matches (by id, source or path), else its own id."""
    for entry in relevance:
        if entry in (candidate.doc_id, candidate.source, candidate.path):
            return entry
        if candidate.path and candidate.path.endswith("/" + entry.lstrip("/")):
            return entry
        if candidate.source and candidate.source.endswith("/" + entry.lstrip("/")):
            return entry
    return candidate.doc_id or candidate.source or None


def _rank(run: QuestionRun, config: EvalConfig, reranker: Reranker | None, instruction: str | None) -> ConfigRanking:
    if config.instruction is None and not config.per_question:
        order = list(range(len(run.candidates)))
        return ConfigRanking(order, question_metrics([run.keys[i] for i in order], run.item.relevance), 0.0)
    assert reranker is not None
    started = time.perf_counter()
    scores = reranker.score(run.item.question, [c.passage() for c in run.candidates], instruction)
    latency = (time.perf_counter() - started) * 1000
    order = rank_order(scores)
    return ConfigRanking(order, question_metrics([run.keys[i] for i in order], run.item.relevance), latency, scores)


def evaluate(
    items: Sequence[EvalItem],
    retriever: Retriever,
    reranker: Reranker | None,
    configs: Sequence[EvalConfig],
    collection: str,
    candidates_k: int,
    instruction_for: Callable[[EvalItem], str] | None = None,
    progress: Callable[[int], None] | None = None,
    mode: str = "hybrid",
) -> list[QuestionRun]:
    """`instruction_for` gives a question's own preset instruction (for `per_question` configurations);
    `mode` is the retrieval mode (dense, lexical or hybrid)."""
    runs = []
    for number, item in enumerate(items, start=1):
        candidates = retriever.search(item.question, collection, candidates_k, mode=mode).candidates
        runs.append(rank_candidates(item, candidates, reranker, configs, instruction_for))
        if progress:
            progress(number)
    return runs


def rank_candidates(
    item: EvalItem,
    candidates: list[Candidate],
    reranker: Reranker | None,
    configs: Sequence[EvalConfig],
    instruction_for: Callable[[EvalItem], str] | None = None,
) -> QuestionRun:
    """The baseline (candidates in the order given) and every configuration over the same candidates."""
    run = QuestionRun(item, candidates, [doc_key(c, item.relevance) for c in candidates])
    for config in [EvalConfig(BASELINE), *configs]:
        instruction = instruction_for(item) if config.per_question and instruction_for else config.instruction
        run.by_config[config.name] = _rank(run, config, reranker, instruction)
    return run


def summarize(runs: Sequence[QuestionRun]) -> list[ConfigSummary]:
    names = [n for n in runs[0].by_config if all(n in r.by_config for r in runs)] if runs else []
    summaries = []
    for name in names:
        ranked = [run.by_config[name] for run in runs]
        means = {m: sum(getattr(r.metrics, m) for r in ranked) / len(ranked) for m in METRICS}
        latencies = [r.latency_ms for r in ranked]
        summaries.append(ConfigSummary(name, means, percentile(latencies, 50), percentile(latencies, 95)))
    return summaries
