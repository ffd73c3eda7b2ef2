"""`ragbot source add|list|remove` and `ragbot sync`: the sources that keep collections current."""

from __future__ import annotations

import json
import re
import time
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from bot.cli.ask import check_option_collection
from bot.cli.console import err, out, plural, progress_bar

if TYPE_CHECKING:
    from retrieval.sources.sync import SyncReport

# How often a source syncs when `--every` is not given: a folder is cheap to look at, a site is not.
DEFAULT_EVERY = {"folder": "1h"}
DEFAULT_REMOTE_EVERY = "6h"
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_EVERY_S = 60


def parse_every(text: str) -> int | None:
    """`--every 30m|6h|1d` as seconds; `off` (or `never`, `manual`) syncs only when asked."""
    if text.strip().lower() in ("off", "never", "manual", "0"):
        return None
    match = _DURATION.match(text.lower())
    if match is None:
        raise typer.BadParameter(f"{text!r} is not a duration: use a number and s, m, h or d (30m, 6h, 1d), or off")
    seconds = int(match.group(1)) * _UNIT_S[match.group(2)]
    if seconds < MIN_EVERY_S:
        raise typer.BadParameter(f"{text!r} is too often: a source syncs at most once a minute")
    return seconds


def show_every(seconds: int | None) -> str:
    if not seconds:
        return "on demand"
    for unit in ("d", "h", "m"):
        if seconds % _UNIT_S[unit] == 0:
            return f"every {seconds // _UNIT_S[unit]}{unit}"
    return f"every {seconds}s"


def add(
    name: Annotated[str, typer.Argument(help="The source's name (presets filter by it)")],
    kind: Annotated[str, typer.Option("--kind", help="folder, web, confluence, notion, zendesk or github")],
    path: Annotated[
        str | None, typer.Option(help="folder: the folder; github: the folder in the repository (default: all)")
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            help="web: start page or sitemap.xml; confluence: https://SITE.atlassian.net/wiki; "
            "zendesk: https://SUBDOMAIN.zendesk.com; github/notion: the API root (GitHub Enterprise, tests)"
        ),
    ] = None,
    collection: Annotated[str | None, typer.Option(help="Collection it feeds [default: RAGBOT_COLLECTION]")] = None,
    every: Annotated[
        str | None, typer.Option(help="Sync schedule: 30m, 6h, 1d, or off [default: 1h for folders, else 6h]")
    ] = None,
    max_pages: Annotated[int | None, typer.Option(help="web: most pages one sync reads [default: 2000]")] = None,
    delay: Annotated[
        float | None,
        typer.Option(help="web: seconds between two requests (robots.txt Crawl-delay wins if longer) [default: 1]"),
    ] = None,
    token_env: Annotated[
        str | None,
        typer.Option(
            help="The environment variable holding the token (never the token itself) [default: "
            "CONFLUENCE_API_TOKEN, NOTION_TOKEN, ZENDESK_API_TOKEN, GITHUB_TOKEN]"
        ),
    ] = None,
    space: Annotated[list[str] | None, typer.Option(help="confluence: a space key (repeat for several)")] = None,
    email: Annotated[str | None, typer.Option(help="confluence, zendesk: the account the API token belongs to")] = None,
    repo: Annotated[str | None, typer.Option(help="github: OWNER/NAME")] = None,
    branch: Annotated[str | None, typer.Option(help="github: branch or tag [default: the default branch]")] = None,
    locale: Annotated[str | None, typer.Option(help="zendesk: Help Center locale, e.g. en-us")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="A tag on every document (repeat for several)")] = None,
) -> None:
    """Add a source: a folder, a website, a Confluence space, Notion pages, a Zendesk help center, a GitHub repo."""
    import store
    from bot.app import open_components
    from retrieval.sources.kinds import DEFAULT_TOKEN_ENV, SOURCE_KINDS, check_settings

    if kind not in SOURCE_KINDS:
        raise typer.BadParameter(
            f"{kind!r} is not a source kind: use one of {', '.join(SOURCE_KINDS)}", param_hint="--kind"
        )
    if collection is not None:
        check_option_collection(collection)
    if token_env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", token_env):
        raise typer.BadParameter(
            "give the NAME of an environment variable (e.g. ZENDESK_API_TOKEN), never the token itself",
            param_hint="--token-env",
        )
    settings: dict[str, Any] = {
        "path": str(_folder(path)) if kind == "folder" and path else path,
        "url": url,
        "max_pages": max_pages,
        "delay": delay,
        "spaces": space or [],
        "email": email,
        "repo": repo,
        "branch": branch,
        "locale": locale,
        "tags": tag or [],
    }
    try:
        settings = check_settings(kind, settings)
    except ValueError as exc:
        err.print(f"[red]Error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    every_s = parse_every(every or DEFAULT_EVERY.get(kind, DEFAULT_REMOTE_EVERY))
    with open_components() as parts:
        target = collection or parts.settings.ragbot_collection
        with parts.sessions.begin() as session:
            store.add_source(
                session,
                name=name,
                kind=kind,
                settings=settings,
                collection=target,
                every_s=every_s,
                token_env=token_env,
            )
    variable = token_env or DEFAULT_TOKEN_ENV.get(kind)
    out.print(
        f"Added {kind} source '{escape(name)}' feeding '{escape(target)}', {show_every(every_s)}"
        + (f"; its token is read from {variable}" if variable else "")
        + f". Sync it now: ragbot sync {escape(name)}"
    )


def _folder(path: str) -> Any:
    from pathlib import Path

    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise typer.BadParameter(f"no such folder: {folder}", param_hint="--path")
    return folder


def list_sources(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (one object per source)")] = False,
) -> None:
    """List the sources: kind, collection, schedule, documents and the last sync."""
    import store
    from bot.app import open_components

    with open_components() as parts, parts.sessions() as session:
        sources = store.list_sources(session)
        ids = [source.id for source in sources]
        last = store.last_syncs(session, ids)
        counts = store.source_counts(session, ids)
        rows = [_row(source, last.get(source.id), counts.get(source.id, 0)) for source in sources]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    if not rows:
        out.print("No sources yet. Add one: ragbot source add NAME --kind folder --path DIR")
        return
    for row in rows:
        sync = row["last_sync"]
        said = "never synced"
        if sync:
            said = (
                f"last sync {sync['started_at'][:16].replace('T', ' ')} UTC: {sync['status']}, {sync['added']} added, "
                f"{sync['changed']} changed, {sync['removed']} removed, {sync['failed']} failed"
            )
            if sync["error"]:
                said += f" ({sync['error']})"
        where = row["settings"].get("url") or row["settings"].get("path") or row["settings"].get("repo") or ""
        out.print(
            f"[bold]{escape(row['name'])}[/] {row['kind']} {escape(str(where))} → '{escape(row['collection'])}', "
            f"{show_every(row['every_s'])}; {plural(row['documents'], 'document')}; {escape(said)}",
            highlight=False,
        )


def _row(source: Any, sync: Any, documents: int) -> dict[str, Any]:
    from redact import mask_secrets

    settings = {key: mask_secrets(value) if isinstance(value, str) else value for key, value in source.settings.items()}
    return {
        "name": source.name,
        "kind": source.kind,
        "collection": source.collection,
        "settings": settings,
        "every_s": source.every_s,
        "token_env": source.token_env,
        "documents": documents,
        "last_sync": None
        if sync is None
        else {
            "status": sync.status,
            "started_at": sync.started_at.isoformat(),
            "finished_at": sync.finished_at.isoformat() if sync.finished_at else None,
            "added": sync.added,
            "changed": sync.changed,
            "removed": sync.removed,
            "unchanged": sync.unchanged,
            "failed": sync.failed,
            "error": sync.error,
            "errors": sync.errors,
        },
    }


def remove(
    name: Annotated[str, typer.Argument(help="The source to remove")],
    purge: Annotated[bool, typer.Option(help="Also delete its documents from the collection")] = False,
) -> None:
    """Remove a source and its sync history. Its documents stay in the collection unless --purge."""
    import store
    from bot.app import open_components
    from bot.app.sources import find_source, purge_source

    with open_components() as parts:
        source = find_source(parts.sessions, name)
        purged = purge_source(parts, name) if purge else 0
        with parts.sessions.begin() as session:
            store.remove_source(session, name)
    if purge:
        out.print(f"Removed source '{escape(name)}' and its {plural(purged, 'document')} from '{source.collection}'.")
    else:
        out.print(
            f"Removed source '{escape(name)}'. Its documents stay in '{source.collection}' and are still cited; "
            f"`ragbot source remove NAME --purge` also deletes them."
        )


class _SyncProgress:
    """One source's sync: a live bar on a terminal's stderr, or a plain line per document changed when output is
    a log (unchanged documents are only counted)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.done = 0
        self.started = time.perf_counter()
        self.bar = progress_bar(f"[bold]{escape(name)}", current=True) if err.is_terminal else None
        self.lines = not (out.is_terminal and err.is_terminal)
        self.task = self.bar.add_task(name, total=None, current="listing") if self.bar else None

    def __enter__(self) -> _SyncProgress:
        if self.bar:
            self.bar.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.bar:
            self.bar.stop()

    def document(self, key: str, outcome: str) -> None:
        self.done += 1
        if self.bar and self.task is not None:
            self.bar.update(self.task, advance=1, current=f"{outcome}: {key[-60:]}")
        if self.lines and outcome != "unchanged":
            out.print(f"  {escape(outcome)}: {escape(key)} [{time.perf_counter() - self.started:.0f} s]")
            out.file.flush()


def sync(
    names: Annotated[list[str] | None, typer.Argument(help="The sources to sync")] = None,
    all_sources: Annotated[bool, typer.Option("--all", help="Sync every source")] = False,
) -> None:
    """Sync sources now: new and changed documents are indexed, unchanged ones skipped, deleted ones removed."""
    import store
    from bot.app import open_components
    from bot.app.sources import find_source, run_sync
    from retrieval.sources.sync import SyncInterrupted

    with open_components() as parts:
        with parts.sessions() as session:
            every = [source.name for source in store.list_sources(session)]
        if all_sources:
            chosen = every
        elif names:
            chosen = [find_source(parts.sessions, name).name for name in dict.fromkeys(names)]
        else:
            listed = ", ".join(every) or "none yet: ragbot source add"
            err.print(f"[red]Error:[/] name the sources to sync, or --all (sources: {escape(listed)})")
            raise typer.Exit(2)
        if not chosen:
            out.print("No sources to sync. Add one: ragbot source add NAME --kind folder --path DIR")
            return
        reports: list[SyncReport] = []
        for name in chosen:
            with _SyncProgress(name) as progress:
                try:
                    report = run_sync(parts, name, progress=progress.document)
                except SyncInterrupted as stop:
                    _say(stop.report)
                    err.print("Interrupted: the documents done are kept; run the same command again to continue.")
                    raise typer.Exit(130) from None
            reports.append(report)
            _say(report)
    failed = [report.source for report in reports if report.status == "failed"]
    if len(reports) > 1:
        out.print(
            f"[bold]{plural(len(reports), 'source')} synced[/]: {len(reports) - len(failed)} ok, {len(failed)} failed"
            + (f" ({escape(', '.join(failed))})" if failed else "")
        )
    if failed:
        raise typer.Exit(1)


def _say(report: SyncReport) -> None:
    """A source's summary line, then its failures."""
    status = {"ok": "[green]synced[/]", "failed": "[red]failed[/]", "interrupted": "[yellow]interrupted[/]"}
    out.print(
        f"{status[report.status]} '{escape(report.source)}' in {report.seconds:.1f} s: {len(report.added)} added, "
        f"{len(report.changed)} changed, {len(report.removed)} removed, {len(report.unchanged)} unchanged, "
        f"{len(report.failed)} failed; {plural(report.chunks, 'chunk')} written.",
        highlight=False,
    )
    if report.error:
        err.print(f"  [red]error:[/] {escape(report.error)} (nothing was removed)")
    for key, reason in list(report.failed.items())[:20]:
        err.print(f"  [yellow]failed:[/] {escape(key)}: {escape(reason)} (kept as it was)")
    if len(report.failed) > 20:
        err.print(f"  … and {len(report.failed) - 20} more (ragbot source list --json shows them all)")
