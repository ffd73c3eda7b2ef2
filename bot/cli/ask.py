"""`ragbot ask`: one question, answered with numbered sources, the preset, the rerank status and timings."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from bot.cli.console import err, out

if TYPE_CHECKING:
    from bot.answering import AskResult


def ask(
    question: Annotated[str, typer.Argument(help="The question, in quotes")],
    channel: Annotated[str | None, typer.Option(help="Slack channel id whose preset to use")] = None,
    collection: Annotated[
        str | None, typer.Option(help="Collection to search instead of the preset's [default: RAGBOT_COLLECTION]")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    require_rerank: Annotated[
        bool | None, typer.Option("--require-rerank", help="Fail if reranking cannot run [env: RERANK_REQUIRED]")
    ] = None,
) -> None:
    """Answer a question from the knowledge base, with numbered sources and timings."""
    from bot.answering import validate_question
    from bot.app import open_components

    validate_question(question)  # before loading anything
    if collection is not None:
        check_option_collection(collection)
    with open_components() as parts:
        parts.require_data()
        result = parts.answers.ask(
            question, channel=channel, require_rerank=require_rerank or None, collection=collection
        )
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), ensure_ascii=False, indent=2) + "\n")
    else:
        print_result(result)


def print_answer(text: str) -> None:
    """The answer's Markdown rendered on a terminal (bold, lists, code); as written when piped or captured."""
    if out.is_terminal:
        from rich.markdown import Markdown  # markdown-it loads only when it renders

        out.print(Markdown(text))
    else:
        out.print(escape(text), highlight=False)


def check_option_collection(name: str) -> None:
    """`--collection NAME` held to RAGBOT_COLLECTION's rule: one clear line and exit 1, not a search error."""
    from retrieval.names import check_collection_name

    try:
        check_collection_name(name)
    except ValueError as exc:
        err.print(f"[red]Error:[/] --collection {escape(repr(name))}: {escape(str(exc))}")
        raise typer.Exit(1) from None


def print_result(result: AskResult) -> None:
    print_answer(result.answer)
    if result.note:
        out.print(f"[yellow]{escape(result.note)}[/]")
    heading = "Sources" if result.answered else "Closest passages (not used)"
    out.print(f"\n[bold]{heading}[/]")
    for c in result.citations:
        score = f"{c.score:.2f}" if c.score is not None else "n/a"
        where = f"{c.title} › {c.section}" if c.section else c.title
        updated = f" · updated {c.updated_date}" if c.updated_date else ""
        out.print(f"  [{c.n}] {escape(where)} — {escape(c.source)}  (rerank {score}{updated})")
    rerank = result.rerank if result.rerank.ok else f"[yellow]{escape(result.rerank)}[/]"
    out.print(
        f"\npreset [bold]{escape(result.preset.name)}[/] v{result.preset.version} · "
        f"retrieval {result.retrieval_mode} · rerank {rerank} · "
        f"answer {escape(result.answer_writer)} · ranking #{result.ranking_id}"
    )
    t = result.timings_ms
    out.print(
        "timings: "
        + " · ".join(
            f"{stage} {t.get(stage, 0.0):.0f} ms" for stage in ("embed", "search", "rerank", "answer", "total")
        )
    )
    if result.retrieval_note:
        out.print(f"[yellow]retrieval: {escape(result.retrieval_note)}[/]")
