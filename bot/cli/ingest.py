"""`ragbot ingest`: index a folder or a file, incrementally."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from bot.cli.ask import check_option_collection
from bot.cli.console import err, out, progress_bar


def plural(count: int, noun: str) -> str:
    """`1 file`, `2 files`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def ingest(
    path: Annotated[Path, typer.Argument(help="A folder (searched recursively) or one file: .md .txt .html .pdf")],
    collection: Annotated[str | None, typer.Option(help="Collection to write to [default: RAGBOT_COLLECTION]")] = None,
    rebuild: Annotated[
        bool,
        typer.Option(help="Drop the collection and index everything again (after EMBED_MODEL or ragbot changes)"),
    ] = False,
) -> None:
    """Ingest documents: new and changed files are (re)indexed, unchanged ones skipped, deleted ones removed."""
    from bot.app import open_components
    from retrieval import RetrievalError, ingest_path
    from retrieval.ingest import discover_files, unsupported_files
    from retrieval.loaders import SUPPORTED_SUFFIXES

    if collection is not None:
        check_option_collection(collection)
    if not path.exists():
        raise RetrievalError(f"No such file or folder: {path}")
    with open_components() as parts:
        name = collection or parts.settings.ragbot_collection
        total = len(discover_files(path.resolve()))
        if total == 0:
            raise RetrievalError(f"No .md, .txt, .html or .pdf files found in {path}")
        with progress_bar("[bold]{task.description}", current=True) as progress:
            task = progress.add_task("Loading model", total=total, current="")
            embedder = parts.embedder
            progress.update(task, description="Ingesting")

            def advance(file: str, outcome: str) -> None:
                progress.update(task, advance=1, current=f"{outcome}: {Path(file).name}")

            summary = ingest_path(
                path,
                parts.index,
                embedder,
                name,
                chunk_tokens=parts.settings.chunk_tokens,
                overlap_tokens=parts.settings.chunk_overlap_tokens,
                progress=advance,
                rebuild=rebuild,
            )
    low_yield = summary.low_yield()
    out.print(
        f"[bold]Ingested {plural(summary.files, 'file')} into '{summary.collection}'[/] in {summary.seconds:.1f} s: "
        f"{len(summary.added)} added, {len(summary.updated)} updated, {len(summary.unchanged)} unchanged, "
        f"{len(summary.removed)} removed, {len(summary.failed)} failed; {summary.chunks} chunks written"
        f" ({sum(y.chars for y in summary.yields.values()):,} characters of text)"
        + (f"; {len(low_yield)} with almost no text." if low_yield else ".")
    )
    for file, result in summary.yields.items():
        notes = [f"{result.chars:,} characters from {result.file_bytes / 1000:,.1f} KB", f"{result.chunks} chunks"]
        if result.encoding:
            notes.append(f"read as {result.encoding}")
        if result.warnings:
            notes.append(f"{len(result.warnings)} parser warnings (first: {result.warnings[0]})")
        out.print(f"  indexed: {escape(file)}: {escape(', '.join(notes))}")
    for file in low_yield:
        result = summary.yields[file]
        visible = f" of {result.source_chars:,} visible" if result.source_chars else ""
        err.print(
            f"  [yellow]warning:[/] {escape(file)} yielded only {result.chars:,} characters{visible} "
            f"from {result.file_bytes / 1000:,.1f} KB: its text may not have been extracted "
            "(check the file, or convert it to Markdown or PDF)"
        )
    skipped = unsupported_files(path.resolve())
    if skipped:
        kinds = ", ".join(sorted({file.suffix.lower() or "(no extension)" for file in skipped}))
        out.print(
            f"  skipped: {plural(len(skipped), 'other file')} of a type ingest does not read ({escape(kinds)}); "
            f"supported: {' '.join(SUPPORTED_SUFFIXES)}"
        )
    for removed in summary.removed:
        out.print(f"  removed: {escape(removed)}")
    for failed, reason in summary.failed.items():
        err.print(f"  [red]failed:[/] {escape(failed)}: {escape(reason)}")
    if summary.failed:
        raise typer.Exit(1)
