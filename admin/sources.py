"""The sources pages' view of `store.sources`: each source with its latest sync, in words an admin reads (a
schedule, a duration, a status), and "Sync now". The admin never syncs: it marks the source, and the scheduler
of `ragbot serve` runs the sync.

Nothing here shows a secret. A source's settings hold none by contract (`token_env` names the variable that
holds the token, and only the name is shown), but every value and every error is still masked with
`redact.mask_secrets` and any setting named like a secret is hidden, since a URL typed into a setting or quoted
in an error can carry credentials.

No HTTP here. Nothing commits: the caller owns the transaction.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from admin import audit
from redact import mask_secrets
from store.models import Source, SourceSync, utcnow
from store.sources import last_syncs, list_sources, request_sync, source_counts, source_named, sync_history

# How many of a sync's per-document errors a page lists (the rest are counted).
SHOWN_ERRORS = 5
HISTORY = 20
HIDDEN = "(hidden)"
# A setting whose name says it is a credential is never shown, whatever its value looks like.
_SECRET_SETTING = re.compile(r"(key|token|secret|passw(or)?d|pwd|credential|auth|cookie|session)", re.IGNORECASE)
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def schedule_text(every_s: int | None) -> str:
    """ "every 6h", "every 90m", "on demand" (no schedule): the largest unit that says it exactly."""
    if not every_s or every_s <= 0:
        return "on demand"
    unit, size = next((u, s) for u, s in _UNITS if every_s % s == 0)
    return f"every {every_s // size}{unit}"


def duration_text(seconds: float) -> str:
    """ "850 ms", "42 s", "3 min 5 s", "2 h 4 min": short, for a table cell."""
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def _text(value: Any) -> str:
    return mask_secrets(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str))


def shown_settings(settings: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(name, value) of a source's settings as a page may show them: credentials masked in every value, and
    any setting named like a secret hidden entirely."""
    return [
        (str(name), HIDDEN if _SECRET_SETTING.search(str(name)) else _text(value))
        for name, value in sorted((settings or {}).items())
    ]


@dataclass(frozen=True)
class SyncView:
    """One sync as the pages show it; `errors` are the first SHOWN_ERRORS (document key, reason), masked."""

    sync: SourceSync
    duration: str
    error: str | None
    errors: list[tuple[str, str]]
    more_errors: int

    @classmethod
    def of(cls, sync: SourceSync, now: datetime) -> SyncView:
        end = sync.finished_at or (now if sync.status == "running" else None)
        duration = "—" if end is None else duration_text(max((end - sync.started_at).total_seconds(), 0.0))
        if sync.status == "running" and sync.finished_at is None:
            duration = f"{duration} so far"
        items = list((sync.errors or {}).items())
        errors = [(mask_secrets(str(key)), _text(reason)) for key, reason in items[:SHOWN_ERRORS]]
        error = mask_secrets(sync.error) if sync.error else None
        return cls(sync, duration, error, errors, max(len(items) - SHOWN_ERRORS, 0))


@dataclass(frozen=True)
class SourceView:
    """A source with its schedule, documents held, latest sync (None: never synced) and masked settings."""

    source: Source
    schedule: str
    documents: int
    last: SyncView | None
    settings: list[tuple[str, str]]
    sync_pending: bool

    @property
    def status(self) -> str:
        return self.last.sync.status if self.last else "never synced"


def _view(source: Source, documents: int, last: SourceSync | None, now: datetime) -> SourceView:
    return SourceView(
        source=source,
        schedule=schedule_text(source.every_s),
        documents=documents,
        last=None if last is None else SyncView.of(last, now),
        settings=shown_settings(source.settings),
        sync_pending=source.sync_requested_at is not None,
    )


def source_views(session: Session, now: datetime | None = None) -> list[SourceView]:
    """Every source, by name, with its latest sync and the documents it holds."""
    now = now or utcnow()
    sources = list_sources(session)
    ids = [s.id for s in sources]
    syncs, counts = last_syncs(session, ids), source_counts(session, ids)
    return [_view(s, counts.get(s.id, 0), syncs.get(s.id), now) for s in sources]


def source_view(session: Session, name: str, now: datetime | None = None) -> tuple[SourceView, list[SyncView]] | None:
    """The source called `name` and its last HISTORY syncs, newest first; None when there is no such source."""
    now = now or utcnow()
    source = source_named(session, name)
    if source is None:
        return None
    history = [SyncView.of(sync, now) for sync in sync_history(session, source.id, limit=HISTORY)]
    counts = source_counts(session, [source.id])
    return _view(source, counts.get(source.id, 0), history[0].sync if history else None, now), history


def ask_for_sync(session: Session, name: str, actor: str) -> bool:
    """Mark the source called `name` for the scheduler to sync soon, audited as `actor`; False when there is no
    such source."""
    if not request_sync(session, name):
        return False
    audit.record(session, actor, audit.Action.SOURCE_SYNC, f"source {name}", None, {"sync_requested": True})
    session.flush()
    return True
