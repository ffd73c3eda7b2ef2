"""`ragbot logs purge`: delete questions older than a span (rankings with their candidates, feedback, labels and
escalations, finished answer jobs, Slack events, Slack refusals, idle assistant threads), the same purge
`ragbot serve` runs on its own with RANKING_RETENTION_DAYS."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.console import out
from bot.cli.spans import parse_span

if TYPE_CHECKING:
    from store import PurgeCounts


def describe(counts: PurgeCounts) -> str:
    """What a purge deleted (or would), in one line."""
    return (
        f"{counts.rankings} rankings ({counts.candidates} candidates, {counts.feedback} feedback, "
        f"{counts.labels} labels, {counts.escalations} escalations), {counts.answer_jobs} finished answer jobs, "
        f"{counts.slack_events} Slack events, {counts.slack_refusals} Slack refusals, "
        f"{counts.assistant_threads} assistant threads"
    )


def purge(
    older_than: Annotated[
        str, typer.Option("--older-than", help="Delete what is older than this: 90d, 36h, 12w", show_default=False)
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing")] = False,
) -> None:
    """Delete questions and what hangs off them older than a span: rankings with their candidates, feedback,
    labels and escalations, finished answer jobs, Slack events and refusals, assistant threads idle since. Queued
    and running questions are never touched."""
    import store
    from bot.app import open_components
    from store.models import utcnow

    cutoff = utcnow() - parse_span(
        older_than, "--older-than", units="hdw"
    )  # before opening anything: bad input is said at once
    when = f"older than {older_than.strip()} (before {cutoff:%Y-%m-%d %H:%M} UTC)"
    with open_components() as parts:
        if dry_run:
            with parts.sessions() as session:
                out.print(f"Would delete {describe(store.count_older_than(session, cutoff))} {when}.")
            return
        out.print(f"Deleted {describe(store.purge_older_than(parts.sessions, cutoff))} {when}.")
