"""Sources at work: a sync of one source under its database lock, recorded in its history, and the background
scheduler `ragbot serve` runs. The ledger of what each source holds lives in the database; the connectors and the
sync engine (retrieval.sources) know nothing of it."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

import store
from bot.app.components import Components
from retrieval.errors import first_line
from retrieval.ingest import BATCH_CHUNKS, DocumentWriter
from retrieval.lexical import LexicalEncoder
from retrieval.sources import DocumentMeta, KnownDocument
from retrieval.sources.kinds import DEFAULT_TOKEN_ENV, open_connector
from retrieval.sources.sync import SyncInterrupted, SyncProgress, SyncReport, purge_documents, sync_source
from store.models import Source, utcnow

log = logging.getLogger(__name__)

LEASE_S = 120.0  # a sync's lock lasts this long unless renewed; renewed every third of it while the sync runs
SCHEDULER_EVERY_S = 30.0  # how often `ragbot serve` looks for due sources
SYNC_NICE = 10  # the scheduler thread's niceness: answers come first on a busy CPU


class SourceNotFoundError(ValueError):
    """No source has this name."""


class SourceBusyError(RuntimeError):
    """Another process is syncing this source now."""


@dataclass(frozen=True)
class SourceView:
    """A source as commands show it, read inside one session."""

    name: str
    kind: str
    collection: str
    settings: dict[str, Any]
    every_s: int | None
    token_env: str | None


class DatabaseLedger:
    """A source's documents as the database records them (`store.sources`), for the sync engine."""

    def __init__(self, sessions: sessionmaker[Session], source_id: int) -> None:
        self.sessions = sessions
        self.source_id = source_id

    def known(self) -> dict[str, KnownDocument]:
        with self.sessions() as session:
            return {
                key: KnownDocument(
                    key, row.version, row.etag, row.last_modified, row.content_hash, dict(row.extra or {})
                )
                for key, row in store.documents_of(session, self.source_id).items()
            }

    def keep(self, state: KnownDocument, meta: DocumentMeta | None) -> None:
        fields: dict[str, Any] = {
            "version": state.version,
            "etag": state.etag,
            "last_modified": state.last_modified,
            "content_hash": state.content_hash,
            "extra": dict(state.extra),
        }
        if meta is not None:
            fields.update(url=meta.url, title=meta.title, updated=meta.updated)
        with self.sessions.begin() as session:
            store.keep_document(session, self.source_id, state.key, **fields)

    def forget(self, keys: Iterable[str]) -> None:
        with self.sessions.begin() as session:
            store.forget_documents(session, self.source_id, keys)


def lock_owner() -> str:
    """Who holds a sync lock: host and process, and a random part so two runs in one process differ."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def source_view(source: Source) -> SourceView:
    return SourceView(
        source.name, source.kind, source.collection, dict(source.settings or {}), source.every_s, source.token_env
    )


def find_source(sessions: sessionmaker[Session], name: str) -> SourceView:
    with sessions() as session:
        source = store.source_named(session, name)
        if source is None:
            known = ", ".join(s.name for s in store.list_sources(session)) or "none yet"
            raise SourceNotFoundError(f"No source named {name!r} (sources: {known}); add one with `ragbot source add`")
        return source_view(source)


def token_for(source: SourceView, environ: Mapping[str, str] = os.environ) -> tuple[str | None, str]:
    """The source's token from the environment variable it names (or its kind's default), and that name."""
    variable = source.token_env or DEFAULT_TOKEN_ENV.get(source.kind, "")
    return (environ.get(variable) or None) if variable else None, variable


def run_sync(
    parts: Components,
    name: str,
    progress: SyncProgress | None = None,
    lease_s: float = LEASE_S,
    min_interval: float | None = None,
) -> SyncReport:
    """Sync the source `name` now, under its lock: SourceBusyError when another process holds it. The sync is
    recorded in the source's history whatever happens (ok, failed, interrupted); a failure inside the sync
    engine that is not the source's (the index is away) is recorded and raised."""
    sessions = parts.sessions
    with sessions() as session:
        row = store.source_named(session, name)
        if row is None:
            raise SourceNotFoundError(f"No source named {name!r}")
        source, source_id = source_view(row), row.id
    owner = lock_owner()
    if not store.acquire_sync_lock(sessions, name, owner, lease_s):
        raise SourceBusyError(f"Source {name!r} is being synced by another process; try again when it is done")
    renewal = _LockRenewal(sessions, name, owner, lease_s)
    try:
        with sessions.begin() as session:
            row = session.get(Source, source_id)
            assert row is not None
            sync_id = store.start_sync(session, row).id
        try:
            report = _sync(parts, source, source_id, progress, min_interval)
        except SyncInterrupted as stop:
            _record(sessions, sync_id, stop.report)
            raise
        except BaseException as exc:
            failed = SyncReport(source=name, error=first_line(exc))
            _record(sessions, sync_id, failed)
            raise
        _record(sessions, sync_id, report)
        return report
    finally:
        renewal.stop()
        store.release_sync_lock(sessions, name, owner)


def _sync(
    parts: Components,
    source: SourceView,
    source_id: int,
    progress: SyncProgress | None,
    min_interval: float | None,
) -> SyncReport:
    token, variable = token_for(source)
    settings = parts.settings
    writer = DocumentWriter(
        parts.index,
        parts.embedders,
        LexicalEncoder(),
        source.collection,
        settings.chunk_tokens,
        settings.chunk_overlap_tokens,
        BATCH_CHUNKS,
    )
    with open_connector(
        source.kind, source.settings, token=token, token_env=variable, min_interval=min_interval
    ) as connector:
        return sync_source(
            source.name,
            connector,
            DatabaseLedger(parts.sessions, source_id),
            writer,
            tags=source.settings.get("tags", ()),
            progress=progress,
        )


def _record(sessions: sessionmaker[Session], sync_id: int, report: SyncReport) -> None:
    with sessions.begin() as session:
        sync = session.get(store.SourceSync, sync_id)
        assert sync is not None
        store.finish_sync(
            session,
            sync,
            status=report.status,
            added=len(report.added),
            changed=len(report.changed),
            removed=len(report.removed),
            unchanged=len(report.unchanged),
            failed=len(report.failed),
            errors=report.failed,
            error=report.error,
        )


def purge_source(parts: Components, name: str) -> int:
    """Delete a source's documents from its collection (before `ragbot source remove --purge` forgets it); how many
    documents there were."""
    with parts.sessions() as session:
        row = store.source_named(session, name)
        if row is None:
            raise SourceNotFoundError(f"No source named {name!r}")
        collection, keys = row.collection, list(store.documents_of(session, row.id))
    if parts.index.collection_info(collection) is None:
        return 0
    return purge_documents(parts.index, collection, name, keys)


class _LockRenewal:
    """Renews a sync's lock every third of its lease while the sync runs, so a long sync keeps it and a crashed
    process's lock runs out."""

    def __init__(self, sessions: sessionmaker[Session], name: str, owner: str, lease_s: float) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(sessions, name, owner, lease_s), name=f"ragbot-lock-{name}", daemon=True
        )
        self._thread.start()

    def _run(self, sessions: sessionmaker[Session], name: str, owner: str, lease_s: float) -> None:
        while not self._stop.wait(lease_s / 3):
            try:
                if not store.renew_sync_lock(sessions, name, owner, lease_s):
                    log.warning("Sync of %s: its lock was taken over (the sync ran past its lease)", name)
                    return
            except Exception:
                log.warning("Sync of %s: renewing its lock failed; trying again", name, exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)


class SourceScheduler:
    """`ragbot serve`'s background syncs: every `every_s` seconds, the due sources (scheduled, or "Sync now" in the
    admin) one at a time, in a thread of lower CPU priority. A failed sync is recorded and logged; the server goes
    on. Several serve processes share the work through the sources' locks."""

    def __init__(self, parts: Components, every_s: float = SCHEDULER_EVERY_S) -> None:
        self.parts = parts
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0  # syncs finished, for tests and logs

    def run_due(self) -> list[SyncReport]:
        """Sync every source due now, one after the other."""
        with self.parts.sessions() as session:
            names = [source.name for source in store.due_sources(session, utcnow())]
        reports = []
        for name in names:
            if self._stop.is_set():
                break
            try:
                report = run_sync(self.parts, name)
            except SourceBusyError:
                continue
            except Exception as exc:
                log.warning("Sync of %s failed: %s", name, first_line(exc))
                continue
            self.runs += 1
            reports.append(report)
            log.warning(
                "Sync of %s: %s, %d added, %d changed, %d removed, %d unchanged, %d failed in %.1f s%s",
                name,
                report.status,
                len(report.added),
                len(report.changed),
                len(report.removed),
                len(report.unchanged),
                len(report.failed),
                report.seconds,
                f" ({report.error})" if report.error else "",
            )
        return reports

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ragbot-sync", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        with contextlib.suppress(AttributeError, OSError):  # Linux: each thread has its own niceness
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), SYNC_NICE)
        while not self._stop.is_set():
            try:
                self.run_due()
            except Exception:
                log.warning("Source syncs: looking for due sources failed; trying again", exc_info=True)
            self._stop.wait(self.every_s)
