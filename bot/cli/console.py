"""The terminal: one console for results (stdout) and one for progress and errors (stderr)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

# soft_wrap: long URLs stay whole when the output is piped or captured.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def progress_bar(label: str, *, current: bool = False) -> Progress:
    """A transient progress bar on stderr: label, bar, n/total, elapsed (and the item at hand)."""
    columns = [TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    if current:
        columns.append(TextColumn("{task.fields[current]}"))
    return Progress(*columns, console=err, transient=True)


def plural(count: int, noun: str) -> str:
    """`1 file`, `2 files`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
