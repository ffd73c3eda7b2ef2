"""`ragbot eval`: measure retrieval and reranking on labeled questions and print the comparison."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from bot.cli.console import err, out, progress_bar
from bot.cli.spans import parse_span
from retrieval.index import RETRIEVAL_MODES

if TYPE_CHECKING:
    from evaluation.plan import EvaluationResult

RetrievalModeOption = Enum("RetrievalModeOption", {mode: mode for mode in RETRIEVAL_MODES}, type=str)


def eval_command(
    eval_set: Annotated[Path | None, typer.Argument(help="JSONL evaluation set (README: 'Evaluation')")] = None,
    preset: Annotated[list[str] | None, typer.Option("--preset", help="Rerank with this preset (repeatable)")] = None,
    instruction: Annotated[
        list[str] | None, typer.Option("--instruction", help="Rerank with this instruction (repeatable)")
    ] = None,
    candidates_k: Annotated[int | None, typer.Option(help="Candidates retrieved per question")] = None,
    no_rerank: Annotated[bool, typer.Option("--no-rerank", help="Retrieval only")] = False,
    retrieval: Annotated[
        RetrievalModeOption | None,
        typer.Option(help="Retrieval mode [default: the default preset's, normally hybrid]"),
    ] = None,
    report: Annotated[Path | None, typer.Option(help="Write a self-contained HTML report here")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON")] = False,
    from_logs: Annotated[bool, typer.Option("--from-logs", help="Replay labeled questions from the log")] = False,
    since: Annotated[str, typer.Option(help="With --from-logs: how far back, e.g. 7d, 12h, 2w")] = "7d",
) -> None:
    """Measure retrieval and reranking on labeled questions; compare presets or instructions."""
    from bot.answering import RerankerUnavailableError
    from bot.app import open_components
    from evaluation.dataset import EvalSetError, load_eval_set
    from evaluation.plan import NamedInstruction, conclude, configurations
    from evaluation.report import render_html

    span = parse_span(since, "--since")  # before anything loads: a typo is said at once
    if (eval_set is None) == (not from_logs):
        raise EvalSetError("Give an evaluation set (ragbot eval SET.jsonl) or --from-logs, not both or neither.")
    items = load_eval_set(eval_set) if eval_set is not None else []
    with open_components() as parts:
        answers = parts.answers
        named = []
        for name in [] if no_rerank else preset or []:
            try:
                snapshot = answers.preset(name=name)
            except ValueError as exc:
                raise EvalSetError(f"{exc}: see the presets in the admin app, or use --instruction TEXT") from exc
            named.append(NamedInstruction(name, snapshot.version, snapshot.instruction))
        configs = configurations(named, instruction or [], no_rerank)
        reranker = None
        if configs:
            try:
                reranker = answers.loaded_reranker()
            except RerankerUnavailableError as exc:
                raise EvalRerankerError(str(exc)) from exc
        default = answers.preset()
        k = candidates_k or default.candidates_k
        mode = retrieval.value if retrieval else default.retrieval_mode
        with progress_bar("[bold]Evaluating") as progress:
            if from_logs:
                from evaluation.replay import logged_runs

                task = progress.add_task("eval", total=None)
                with parts.sessions() as session:
                    runs = logged_runs(session, span, reranker, configs, lambda n: progress.update(task, completed=n))
                if not runs:
                    raise EvalSetError(f"No labeled rankings in the last {since}: label candidates in the admin app.")
            else:
                from evaluation.runner import evaluate

                task = progress.add_task("eval", total=len(items))
                runs = evaluate(
                    items,
                    parts.retriever,
                    reranker,
                    configs,
                    default.collection,
                    k,
                    lambda item: answers.preset(item.channel, item.preset).instruction,
                    lambda n: progress.update(task, completed=n),
                    mode=mode,
                )
    result = conclude(runs)
    if as_json:
        from evaluation.report import to_json

        data = to_json(result.summaries, result.comparisons, result.runs)
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    else:
        title = f"{len(runs)} questions, {'logged' if from_logs else k} candidates each"
        _print_table(result, title + ("" if from_logs else f", {mode} retrieval"))
    if report is not None:
        title = f"ragbot evaluation: {eval_set.name if eval_set else 'replay of labeled questions'}"
        report.write_text(render_html(result.summaries, result.comparisons, result.runs, title), encoding="utf-8")
        err.print(f"Report written to {report}")


TABLE_LEAVES_OUT = ("ndcg_at_10",)


def _print_table(result: EvaluationResult, title: str) -> None:
    from rich.table import Table

    from evaluation.report import LABELS
    from evaluation.runner import METRICS

    # What fits an 80-column terminal: nDCG@10 and the p95 latency are in --json and --report.
    shown = [m for m in METRICS if m not in TABLE_LEAVES_OUT]
    table = Table(title=title)
    table.add_column("configuration", justify="left", ratio=1)
    for column in (*(LABELS[m] for m in shown), "p50 ms"):
        table.add_column(column, justify="right", no_wrap=True)
    for s in result.summaries:
        table.add_row(escape(s.name), *(f"{s.means[m]:.3f}" for m in shown), f"{s.rerank_p50_ms:.0f}")
    out.print(table)
    for c in result.comparisons:
        out.print(
            f"{escape(c.b)} vs {escape(c.a)}: {LABELS[c.metric]} {c.mean_difference:+.3f} "
            f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}], {len(c.better)} better / {len(c.worse)} worse, "
            f"sign test p={c.sign_test_p:.3g}"
        )


class EvalRerankerError(RuntimeError):
    """Reranking configurations were asked for, but the reranker cannot be loaded."""

    def __init__(self, reason: str | None) -> None:
        super().__init__(f"The reranker could not be loaded ({reason}); run with --no-rerank for retrieval only.")
