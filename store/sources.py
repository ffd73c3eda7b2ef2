"""The queries behind knowledge sources: the sources themselves, their sync history, the documents each holds as of
its last sync, and the sync lock.

None of these commit, except the lock functions: a lock is a compare-and-set on the source's row (owner and
expiry in the WHERE clause of one UPDATE), committed in its own short transaction (`sessions.begin()`) so every
process sees it at once, the way `store.jobs` leases durable work.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import ColumnElement

from store.models import SOURCE_KINDS, SYNC_STATUSES, Source, SourceDocument, SourceSync, utcnow

# Keys per DELETE ... IN (...): well under SQLite's and PostgreSQL's bound-parameter limits.
_KEYS_PER_STATEMENT = 500
_DOCUMENT_FIELDS = frozenset(SourceDocument.__table__.columns.keys()) - {"id", "source_id", "key"}


class SourceExistsError(ValueError):
    """A source with this name already exists (names are unique: presets filter by them)."""


def add_source(
    session: Session,
    *,
    name: str,
    kind: str,
    settings: dict[str, Any],
    collection: str,
    every_s: int | None = None,
    token_env: str | None = None,
) -> Source:
    """Add a source and flush so `.id` is set. A duplicate name raises SourceExistsError without spoiling the
    caller's transaction (the insert runs in a savepoint)."""
    if kind not in SOURCE_KINDS:
        raise ValueError(f"Unknown source kind {kind!r}; expected one of {', '.join(SOURCE_KINDS)}.")
    if not name or not name.strip():
        raise ValueError("A source needs a name.")
    if every_s is not None and every_s <= 0:
        raise ValueError(f"every_s must be a positive number of seconds (or None: sync on demand), not {every_s!r}.")
    if source_named(session, name) is not None:
        raise SourceExistsError(f"A source named {name!r} already exists; choose another name or remove it first.")
    source = Source(
        name=name,
        kind=kind,
        settings=dict(settings),
        collection=collection,
        every_s=every_s,
        token_env=token_env,
    )
    try:
        with session.begin_nested():  # another process may add the same name between the check and the insert
            session.add(source)
    except IntegrityError as exc:
        raise SourceExistsError(f"A source named {name!r} already exists; choose another name.") from exc
    return source


def source_named(session: Session, name: str) -> Source | None:
    """The source called `name`, or None."""
    return session.scalar(select(Source).where(Source.name == name))


def list_sources(session: Session) -> list[Source]:
    """Every source, by name."""
    return list(session.scalars(select(Source).order_by(Source.name)))


def remove_source(session: Session, name: str) -> bool:
    """Delete a source with its sync history and document records; False when there is no such source. The
    documents' chunks in the index are the caller's to delete."""
    source = source_named(session, name)
    if source is None:
        return False
    session.delete(source)
    session.flush()
    return True


def last_syncs(session: Session, source_ids: Iterable[int]) -> dict[int, SourceSync]:
    """The latest sync of each of `source_ids` that has synced at least once (source id -> sync)."""
    ids = list(source_ids)
    if not ids:
        return {}
    latest = select(func.max(SourceSync.id)).where(SourceSync.source_id.in_(ids)).group_by(SourceSync.source_id)
    return {sync.source_id: sync for sync in session.scalars(select(SourceSync).where(SourceSync.id.in_(latest)))}


def sync_history(session: Session, source_id: int, limit: int = 20) -> list[SourceSync]:
    """A source's syncs, newest first."""
    query = select(SourceSync).where(SourceSync.source_id == source_id).order_by(SourceSync.id.desc()).limit(limit)
    return list(session.scalars(query))


def _lock_free(now: datetime) -> ColumnElement[bool]:
    return or_(Source.lock_owner.is_(None), Source.locked_until.is_(None), Source.locked_until < now)


def acquire_sync_lock(sessions: sessionmaker[Session], name: str, owner: str, lease_s: float) -> bool:
    """Take (or extend) the lock on source `name` for `lease_s` seconds: True when `owner` now holds it, False
    when another owner's lease has not run out (or there is no such source). One UPDATE, so of two processes
    racing for a free lock exactly one wins."""
    with sessions.begin() as session:
        now = utcnow()
        result = session.execute(
            update(Source)
            .where(Source.name == name, or_(_lock_free(now), Source.lock_owner == owner))
            .values(lock_owner=owner, locked_until=now + timedelta(seconds=lease_s))
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


def renew_sync_lock(sessions: sessionmaker[Session], name: str, owner: str, lease_s: float) -> bool:
    """Push out `owner`'s lock on `name` while its sync runs (its heartbeat); False when the lock is no longer
    `owner`'s (it ran out and another process took it): the sync should stop."""
    with sessions.begin() as session:
        result = session.execute(
            update(Source)
            .where(Source.name == name, Source.lock_owner == owner)
            .values(locked_until=utcnow() + timedelta(seconds=lease_s))
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


def release_sync_lock(sessions: sessionmaker[Session], name: str, owner: str) -> None:
    """Give up `owner`'s lock on `name` (a lock another owner holds is left alone)."""
    with sessions.begin() as session:
        session.execute(
            update(Source)
            .where(Source.name == name, Source.lock_owner == owner)
            .values(lock_owner=None, locked_until=None)
            .execution_options(synchronize_session=False)
        )


def start_sync(session: Session, source: Source) -> SourceSync:
    """Record that a sync of `source` began (status "running") and clear its "Sync now" request, which this
    sync answers; flushes so `.id` is set."""
    now = utcnow()
    session.execute(
        update(Source)
        .where(Source.id == source.id)
        .values(sync_requested_at=None)
        .execution_options(synchronize_session="fetch")
    )
    sync = SourceSync(source_id=source.id, started_at=now, status="running", errors={})
    session.add(sync)
    session.flush()
    return sync


def finish_sync(
    session: Session,
    sync: SourceSync,
    *,
    status: str,
    added: int,
    changed: int,
    removed: int,
    unchanged: int,
    failed: int,
    errors: dict[str, str],
    error: str | None,
) -> SourceSync:
    """Record how a sync ended (counts, errors by document key, why it failed as a whole) and when; flushes."""
    if status not in SYNC_STATUSES or status == "running":
        ended = ", ".join(s for s in SYNC_STATUSES if s != "running")
        raise ValueError(f"A finished sync's status must be one of {ended}, not {status!r}.")
    sync.status = status
    sync.added, sync.changed, sync.removed, sync.unchanged, sync.failed = added, changed, removed, unchanged, failed
    sync.errors = dict(errors)
    sync.error = error
    sync.finished_at = utcnow()
    session.flush()
    return sync


def request_sync(session: Session, name: str) -> bool:
    """Ask for a sync of `name` as soon as a syncing process sees it ("Sync now"); False: no such source."""
    result = session.execute(
        update(Source)
        .where(Source.name == name)
        .values(sync_requested_at=utcnow())
        .execution_options(synchronize_session="fetch")
    )
    return result.rowcount == 1


def due_sources(session: Session, now: datetime) -> list[Source]:
    """Sources to sync at `now`, by name: those asked for ("Sync now"), and scheduled ones (`every_s`) never
    synced or whose latest sync started more than `every_s` seconds ago; never one whose lock is held."""
    candidates = list(
        session.scalars(
            select(Source)
            .where(_lock_free(now), or_(Source.sync_requested_at.is_not(None), Source.every_s.is_not(None)))
            .order_by(Source.name)
        )
    )
    latest = last_syncs(session, [source.id for source in candidates])

    def due(source: Source) -> bool:
        if source.sync_requested_at is not None:
            return True
        last = latest.get(source.id)
        return last is None or last.started_at <= now - timedelta(seconds=source.every_s or 0)

    return [source for source in candidates if due(source)]


def documents_of(session: Session, source_id: int) -> dict[str, SourceDocument]:
    """The documents a source held after its last sync, by key."""
    documents = session.scalars(select(SourceDocument).where(SourceDocument.source_id == source_id))
    return {doc.key: doc for doc in documents}


def keep_document(session: Session, source_id: int, key: str, **fields: Any) -> SourceDocument:
    """Add or update the record of one document of a source (`fields`: url, title, version, etag, last_modified,
    content_hash, extra, updated); `synced_at` becomes now unless given. Flushes."""
    unknown = set(fields) - _DOCUMENT_FIELDS
    if unknown:
        raise ValueError(f"Unknown document field(s) {sorted(unknown)}; expected some of {sorted(_DOCUMENT_FIELDS)}.")
    fields.setdefault("synced_at", utcnow())
    doc = session.scalar(select(SourceDocument).where(SourceDocument.source_id == source_id, SourceDocument.key == key))
    if doc is None:
        doc = SourceDocument(source_id=source_id, key=key, extra={})
        session.add(doc)
    for field, value in fields.items():
        setattr(doc, field, value)
    session.flush()
    return doc


def forget_documents(session: Session, source_id: int, keys: Iterable[str]) -> int:
    """Delete the records of `keys` (documents gone from the source); returns how many there were."""
    keys = list(dict.fromkeys(keys))
    removed = 0
    for start in range(0, len(keys), _KEYS_PER_STATEMENT):
        chunk = keys[start : start + _KEYS_PER_STATEMENT]
        result = session.execute(
            delete(SourceDocument)
            .where(SourceDocument.source_id == source_id, SourceDocument.key.in_(chunk))
            .execution_options(synchronize_session="fetch")
        )
        removed += result.rowcount
    return removed


def source_counts(session: Session, source_ids: Iterable[int]) -> dict[int, int]:
    """How many documents each of `source_ids` holds (0 for one with none)."""
    ids = list(source_ids)
    if not ids:
        return {}
    counts = dict.fromkeys(ids, 0)
    rows = session.execute(
        select(SourceDocument.source_id, func.count())
        .where(SourceDocument.source_id.in_(ids))
        .group_by(SourceDocument.source_id)
    )
    counts.update({source_id: count for source_id, count in rows})
    return counts
