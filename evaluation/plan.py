"""What an evaluation compares (the configurations, after the retrieval-only baseline) and what it concludes
(a summary per configuration, each compared with the baseline and the first two with each other)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from evaluation.compare import Comparison, compare
from evaluation.runner import BASELINE, ConfigSummary, EvalConfig, QuestionRun, summarize


@dataclass(frozen=True)
class NamedInstruction:
    """A saved preset's instruction, as `--preset NAME` asks for it."""

    preset: str
    version: int
    instruction: str


def configurations(
    presets: Sequence[NamedInstruction], instructions: Sequence[str], no_rerank: bool = False
) -> list[EvalConfig]:
    """One configuration per `--preset` and per `--instruction`; with neither, each question's own preset;
    `no_rerank`: none (the baseline alone)."""
    if no_rerank:
        return []
    configs = [EvalConfig(f"preset {p.preset} v{p.version}", p.instruction) for p in presets]
    configs += [EvalConfig(f"instruction: {t[:50]}{'…' if len(t) > 50 else ''}", t) for t in instructions]
    return configs or [EvalConfig("rerank, each question's preset", per_question=True)]


@dataclass
class EvaluationResult:
    summaries: list[ConfigSummary]
    comparisons: list[Comparison]
    runs: list[QuestionRun]


def conclude(runs: Sequence[QuestionRun]) -> EvaluationResult:
    """Summaries, and the comparisons: every configuration with the baseline, and the first two with each other."""
    summaries = summarize(runs)
    names = [s.name for s in summaries]
    comparisons = [compare(runs, BASELINE, name) for name in names[1:]]
    if len(names) > 2:
        comparisons.append(compare(runs, names[1], names[2]))
    return EvaluationResult(summaries, comparisons, list(runs))
