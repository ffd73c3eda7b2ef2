"""`ragbot ingest`: index a folder or a file, incrementally."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.markup import escape

from bot.cli.ask import check_option_collection
from bot.cli.console import err, out, plural, progress_bar

if TYPE_CHECKING:
    from bot.app import Components
    from retrieval import IngestSummary

T = TypeVar("T")
# A big file reports its chunks on a plain progress line at each tenth of the way.
PROGRESS_STEPS = 10


def too_large(size: int, limit_mb: float) -> str:
    """Why a file was passed over for its size: the size, the limit and the setting that moves it."""
    shown = f"{size / 1_000_000:,.1f} MB" if size >= 100_000 else f"{size / 1000:,.1f} KB"
    return (
        f"{shown} is over the {limit_mb:g} MB limit (INGEST_MAX_FILE_MB): split the file, "
        "or raise INGEST_MAX_FILE_MB (0 = no limit) to ingest it"
    )


class _Progress:
    """Ingestion progress: a live bar on a terminal's stderr and, when stdout or stderr is not a terminal (a log
    file, a pipe, CI), plain lines on stdout, flushed as they come: one per file, and one per tenth of a big
    file's chunks."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.files = 0
        self.started = time.perf_counter()
        self.bar = progress_bar("[bold]{task.description}", current=True) if err.is_terminal else None
        self.lines = not (out.is_terminal and err.is_terminal)
        self.task = self.bar.add_task("Loading model", total=total, current="") if self.bar else None
        self.step: dict[str, int] = {}

    def __enter__(self) -> _Progress:
        if self.bar:
            self.bar.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.bar:
            self.bar.stop()

    def loading(self, load: Callable[[], T]) -> T:
        """Load the model under a 'Loading model' label, then switch to ingesting."""
        self._line(f"Loading the embedding model; then {plural(self.total, 'file')} to ingest")
        loaded = load()
        if self.bar and self.task is not None:
            self.bar.update(self.task, description="Ingesting")
        return loaded

    def file_done(self, file: str, outcome: str) -> None:
        self.files += 1
        if self.bar and self.task is not None:
            self.bar.update(self.task, advance=1, current=f"{outcome}: {Path(file).name}")
        self._line(f"[{self.files}/{self.total}] {outcome}: {file}")

    def chunks_done(self, file: str, done: int, total: int) -> None:
        if self.bar and self.task is not None:
            self.bar.update(self.task, current=f"{Path(file).name}: {done:,}/{total:,} chunks")
        step = done * PROGRESS_STEPS // max(total, 1)
        if done < total and step > self.step.get(file, 0):
            self.step[file] = step
            self._line(f"  {file}: {done:,}/{total:,} chunks ({100 * done // total}%)")

    def _line(self, text: str) -> None:
        if self.lines:
            out.print(f"{escape(text)} [{time.perf_counter() - self.started:.0f} s]", highlight=False)
            out.file.flush()


def _say_interrupted(summary: IngestSummary) -> None:
    """One line: what Ctrl-C left in the collection, and that running again continues."""
    cut = f" ({escape(Path(summary.interrupted).name)} was cut off and will be redone)" if summary.interrupted else ""
    err.print(
        f"Interrupted: kept {plural(summary.kept, 'file')} ({summary.chunks} chunks written now) in "
        f"'{escape(summary.collection)}'; {summary.files - summary.done} not done{cut} — "
        "run the same command again to continue."
    )


def _clear_old_demo(parts: Components, path: Path) -> None:
    """An older `ragbot demo` wrote its fictional sample into RAGBOT_COLLECTION: it leaves before the user's own
    documents go in, so real answers never cite it (a folder holding the sample, or inside it, is the user's choice)."""
    from bot.cli.demo import SAMPLE_KB, clear_old_demo

    folder = path.resolve()
    if not (folder.is_relative_to(SAMPLE_KB) or SAMPLE_KB.is_relative_to(folder)):
        clear_old_demo(parts.index, parts.settings.ragbot_collection)


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
    from retrieval.ingest import IngestInterrupted, discover_files, unsupported_files
    from retrieval.loaders import SUPPORTED_SUFFIXES

    if collection is not None:
        check_option_collection(collection)
    if not path.exists():
        raise RetrievalError(f"No such file or folder: {path}")
    with open_components() as parts:
        name = collection or parts.settings.ragbot_collection
        total = len(discover_files(path.resolve()))
        if total == 0:
            raise RetrievalError(f"No {', '.join(SUPPORTED_SUFFIXES)} files found in {path}")
        if name == parts.settings.ragbot_collection:
            _clear_old_demo(parts, path)
        limit = parts.settings.ingest_max_file_mb or None
        with _Progress(total) as report:
            embedders = report.loading(lambda: parts.embedders)
            try:
                summary = ingest_path(
                    path,
                    parts.index,
                    embedders,
                    name,
                    chunk_tokens=parts.settings.chunk_tokens,
                    overlap_tokens=parts.settings.chunk_overlap_tokens,
                    progress=report.file_done,
                    chunk_progress=report.chunks_done,
                    rebuild=rebuild,
                    max_file_mb=limit,
                )
            except IngestInterrupted as stop:
                summary = stop.summary
                interrupted = True
            else:
                interrupted = False
    if interrupted:
        _say_interrupted(summary)
        raise typer.Exit(130)
    low_yield = summary.low_yield()
    out.print(
        f"[bold]Ingested {plural(summary.files, 'file')} into '{summary.collection}'[/] in {summary.seconds:.1f} s: "
        f"{len(summary.added)} added, {len(summary.updated)} updated, {len(summary.unchanged)} unchanged, "
        f"{len(summary.removed)} removed, {len(summary.failed)} failed"
        + (f", {len(summary.too_large)} too large" if summary.too_large else "")
        + f"; {summary.chunks} chunks written"
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
    for file, size in summary.too_large.items():
        err.print(f"  [yellow]skipped:[/] {escape(file)}: {too_large(size, summary.max_file_mb or 0)}")
    for failed, reason in summary.failed.items():
        err.print(f"  [red]failed:[/] {escape(failed)}: {escape(reason)}")
    if summary.failed:
        raise typer.Exit(1)
