"""Paired comparison of two configurations over the same questions: per-question differences, the questions
that got better and worse, an exact sign test and a paired bootstrap interval, so a small set does not mislead."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from evaluation.runner import QuestionRun


@dataclass
class Change:
    question: str
    before: float
    after: float
    top_before: list[str]
    top_after: list[str]


@dataclass
class Comparison:
    a: str
    b: str
    metric: str
    mean_difference: float  # b - a
    ci_low: float
    ci_high: float
    better: list[Change]
    worse: list[Change]
    ties: int
    sign_test_p: float


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact binomial test of wins vs losses (ties dropped); 1.0 when there is nothing to test."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def bootstrap_ci(differences: Sequence[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% paired bootstrap interval of the mean difference (fixed seed: the report is reproducible)."""
    if not differences:
        return 0.0, 0.0
    rng = random.Random(seed)
    n = len(differences)
    means = sorted(sum(rng.choice(differences) for _ in range(n)) / n for _ in range(resamples))
    return means[int(0.025 * resamples)], means[min(resamples - 1, int(0.975 * resamples))]


def compare(runs: Sequence[QuestionRun], a: str, b: str, metric: str = "mrr_at_10") -> Comparison:
    differences, better, worse, ties = [], [], [], 0
    for run in runs:
        before = getattr(run.by_config[a].metrics, metric)
        after = getattr(run.by_config[b].metrics, metric)
        differences.append(after - before)
        change = Change(run.item.question, before, after, run.top(a), run.top(b))
        if after > before:
            better.append(change)
        elif after < before:
            worse.append(change)
        else:
            ties += 1
    low, high = bootstrap_ci(differences)
    mean = sum(differences) / len(differences) if differences else 0.0
    better.sort(key=lambda c: c.before - c.after)
    worse.sort(key=lambda c: c.after - c.before)
    return Comparison(a, b, metric, mean, low, high, better, worse, ties, sign_test(len(better), len(worse)))
