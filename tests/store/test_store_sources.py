"""Knowledge sources in the database, on SQLite and PostgreSQL (see conftest.py): unique names, removal with
history and documents, the sync lock (leases that run out, and one winner between two real processes), which
sources are due, the per-document records, and migration 0008 down and up again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, func, inspect, select, text, update
from sqlalchemy.orm import Session, sessionmaker

import store
import store.sources
from store import Source, SourceDocument, SourceExistsError, SourceSync, session_factory, upgrade_database
from store.db import alembic_config
from store.models import utcnow

REPO_ROOT = Path(__file__).resolve().parents[2]


def add(session: Session, name: str, **overrides: object) -> Source:
    fields: dict[str, object] = {
        "name": name,
        "kind": "web",
        "settings": {"url": f"https://docs.example.com/{name}"},
        "collection": "kb",
        "every_s": None,
        "token_env": None,
    }
    fields.update(overrides)
    return store.add_source(session, **fields)  # type: ignore[arg-type]


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def finish(session: Session, sync: SourceSync, status: str = "ok", **overrides: object) -> SourceSync:
    fields: dict[str, object] = {
        "status": status,
        "added": 2,
        "changed": 1,
        "removed": 0,
        "unchanged": 5,
        "failed": 1,
        "errors": {"page/7": "HTTP 500"},
        "error": None,
    }
    fields.update(overrides)
    return store.finish_sync(session, sync, **fields)  # type: ignore[arg-type]


# --- sources ------------------------------------------------------------------------------------------------


def test_add_list_and_refuse_a_duplicate_name_keeping_the_transaction(session: Session) -> None:
    zendesk = add(session, "help-center", kind="zendesk", token_env="ZENDESK_TOKEN", every_s=3600)
    add(session, "docs", settings={"url": "https://docs.example.com/", "max_pages": 50})
    session.commit()
    assert zendesk.id is not None

    with pytest.raises(SourceExistsError, match="A source named 'docs' already exists"):
        add(session, "docs", kind="folder")
    with pytest.raises(ValueError, match="Unknown source kind 'ftp'; expected one of folder, web"):
        add(session, "ftp-share", kind="ftp")
    with pytest.raises(ValueError, match="every_s must be a positive"):
        add(session, "often", every_s=0)
    add(session, "wiki", kind="confluence")  # the session is still usable after the refusals
    session.commit()

    assert [s.name for s in store.list_sources(session)] == ["docs", "help-center", "wiki"]
    docs = store.source_named(session, "docs")
    assert docs is not None and (docs.kind, docs.settings) == (
        "web",
        {"url": "https://docs.example.com/", "max_pages": 50},
    )
    assert (zendesk.every_s, zendesk.token_env, zendesk.collection) == (3600, "ZENDESK_TOKEN", "kb")
    assert store.source_named(session, "nope") is None


def test_the_unique_name_holds_in_the_database_against_a_racing_insert(
    migrated: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process commits the same name between add_source's check and its insert (played here by hiding the
    row from the check): the database's unique constraint refuses it, and the caller's transaction goes on."""
    sessions = session_factory(migrated)
    with sessions.begin() as session:
        add(session, "docs")
    monkeypatch.setattr(store.sources, "source_named", lambda session, name: None)
    with sessions() as session:
        add(session, "wiki")  # earlier work in the same transaction
        with pytest.raises(SourceExistsError, match="'docs' already exists"):
            add(session, "docs", kind="folder")
        session.commit()
    monkeypatch.undo()
    with sessions() as session:
        assert [(s.name, s.kind) for s in store.list_sources(session)] == [("docs", "web"), ("wiki", "web")]


def test_remove_takes_the_history_and_documents_with_it(session: Session) -> None:
    docs, wiki = add(session, "docs"), add(session, "wiki", kind="confluence")
    for source in (docs, wiki):
        finish(session, store.start_sync(session, source))
        store.keep_document(session, source.id, "a", title="A")
        store.keep_document(session, source.id, "b", title="B")
    session.commit()

    assert store.remove_source(session, "docs")
    assert not store.remove_source(session, "docs")
    session.commit()
    session.expunge_all()
    assert [s.name for s in store.list_sources(session)] == ["wiki"]
    assert session.scalars(select(SourceSync.source_id)).all() == [wiki.id]
    assert set(session.scalars(select(SourceDocument.source_id))) == {wiki.id}

    # The database cascades too (ON DELETE CASCADE from the migration), not only the ORM.
    session.execute(text("DELETE FROM sources WHERE name = 'wiki'"))
    session.commit()
    assert (count(session, SourceSync), count(session, SourceDocument)) == (0, 0)


def test_sync_history_and_latest_sync(session: Session) -> None:
    docs, wiki, never = add(session, "docs"), add(session, "wiki"), add(session, "never")
    first = finish(session, store.start_sync(session, docs), status="failed", error="401 from the server")
    second = finish(session, store.start_sync(session, docs))
    running = store.start_sync(session, docs)
    only = finish(session, store.start_sync(session, wiki), status="interrupted")
    session.commit()

    assert [s.id for s in store.sync_history(session, docs.id)] == [running.id, second.id, first.id]
    assert [s.id for s in store.sync_history(session, docs.id, limit=2)] == [running.id, second.id]
    latest = store.last_syncs(session, [docs.id, wiki.id, never.id])
    assert {k: v.id for k, v in latest.items()} == {docs.id: running.id, wiki.id: only.id}
    assert store.last_syncs(session, []) == {}

    assert (running.status, running.finished_at, running.errors) == ("running", None, {})
    assert (second.status, second.added, second.changed, second.unchanged, second.failed) == ("ok", 2, 1, 5, 1)
    assert second.errors == {"page/7": "HTTP 500"} and second.finished_at >= second.started_at
    assert (first.status, first.error) == ("failed", "401 from the server")
    with pytest.raises(ValueError, match="must be one of ok, failed, interrupted, not 'running'"):
        finish(session, running, status="running")


# --- the sync lock ------------------------------------------------------------------------------------------


def test_a_second_owner_is_refused_while_the_lease_holds_and_gets_the_lock_after_it_runs_out(migrated: Engine) -> None:
    sessions = session_factory(migrated)
    with sessions.begin() as session:
        add(session, "docs")
    assert store.acquire_sync_lock(sessions, "docs", "proc-a", lease_s=60)
    assert store.acquire_sync_lock(sessions, "docs", "proc-a", lease_s=60)  # its own lock: extended
    assert not store.acquire_sync_lock(sessions, "docs", "proc-b", lease_s=60)
    assert not store.acquire_sync_lock(sessions, "nope", "proc-a", lease_s=60)
    assert store.renew_sync_lock(sessions, "docs", "proc-a", lease_s=60)
    assert not store.renew_sync_lock(sessions, "docs", "proc-b", lease_s=60)

    # proc-a hangs: its lease runs out and proc-b takes the lock; proc-a can neither renew nor release it.
    with sessions.begin() as session:
        session.execute(update(Source).values(locked_until=utcnow() - timedelta(seconds=1)))
    assert store.acquire_sync_lock(sessions, "docs", "proc-b", lease_s=60)
    assert not store.renew_sync_lock(sessions, "docs", "proc-a", lease_s=60)
    store.release_sync_lock(sessions, "docs", "proc-a")
    with sessions() as session:
        held = store.source_named(session, "docs")
        assert held.lock_owner == "proc-b" and held.locked_until > utcnow() + timedelta(seconds=50)

    store.release_sync_lock(sessions, "docs", "proc-b")
    with sessions() as session:
        released = store.source_named(session, "docs")
        assert (released.lock_owner, released.locked_until) == (None, None)
    assert store.acquire_sync_lock(sessions, "docs", "proc-c", lease_s=60)


def test_a_short_lease_runs_out_by_itself(migrated: Engine) -> None:
    sessions = session_factory(migrated)
    with sessions.begin() as session:
        add(session, "docs")
    assert store.acquire_sync_lock(sessions, "docs", "proc-a", lease_s=0.5)
    assert not store.acquire_sync_lock(sessions, "docs", "proc-b", lease_s=60)
    time.sleep(0.7)
    assert store.acquire_sync_lock(sessions, "docs", "proc-b", lease_s=60)


RACE = """
import json, sys, time
import store
url, owner, start_at, n = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
engine = store.make_engine(url)
sessions = store.session_factory(engine)
time.sleep(max(0.0, start_at - time.time()))
won = [i for i in range(n) if store.acquire_sync_lock(sessions, f"source-{i}", owner, 60)]
engine.dispose()
print(json.dumps(won))
"""


def test_two_processes_racing_for_each_lock_get_exactly_one_winner(db_url: str, migrated: Engine) -> None:
    n = 40
    sessions = session_factory(migrated)
    with sessions.begin() as session:
        for i in range(n):
            add(session, f"source-{i}")
    start_at = time.time() + 3.0  # past both interpreters' imports, so the acquisitions really overlap
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, db_url, owner, repr(start_at), str(n)],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for owner in ("proc-a", "proc-b")
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], "\n".join(err for _, err in outputs)
    won_a, won_b = (set(json.loads(out)) for out, _ in outputs)

    assert not won_a & won_b, f"both processes took sources {sorted(won_a & won_b)}"
    assert won_a | won_b == set(range(n))
    with sessions() as session:
        owners = {s.name: s.lock_owner for s in store.list_sources(session)}
    assert owners == {f"source-{i}": "proc-a" if i in won_a else "proc-b" for i in range(n)}


# --- what is due --------------------------------------------------------------------------------------------


def test_due_sources(migrated: Engine) -> None:
    sessions = session_factory(migrated)
    with sessions.begin() as session:
        add(session, "hourly", every_s=3600)
        add(session, "on-demand")
        add(session, "daily", every_s=86400)
    now = utcnow()

    def due(at=None) -> list[str]:
        with sessions() as session:
            return [s.name for s in store.due_sources(session, at or utcnow())]

    assert due() == ["daily", "hourly"]  # never synced; on-demand is not scheduled

    with sessions.begin() as session:
        for source in store.list_sources(session):
            if source.every_s:
                finish(session, store.start_sync(session, source))
    assert due() == []
    assert due(now + timedelta(seconds=3601)) == ["hourly"]
    assert due(now + timedelta(days=1, seconds=1)) == ["daily", "hourly"]

    # "Sync now" makes any source due, scheduled or not; starting a sync clears the request.
    with sessions.begin() as session:
        assert store.request_sync(session, "on-demand")
        assert store.request_sync(session, "daily")
        assert not store.request_sync(session, "nope")
    assert due() == ["daily", "on-demand"]
    with sessions.begin() as session:
        store.start_sync(session, store.source_named(session, "on-demand"))
    with sessions() as session:
        assert store.source_named(session, "on-demand").sync_requested_at is None
        assert store.source_named(session, "daily").sync_requested_at is not None
    assert due() == ["daily"]

    # A held lock keeps a source off the list, however due; an expired one does not.
    assert store.acquire_sync_lock(sessions, "daily", "proc-a", lease_s=60)
    assert store.acquire_sync_lock(sessions, "hourly", "proc-a", lease_s=60)
    assert due() == []
    assert due(now + timedelta(days=1, seconds=61)) == ["daily", "hourly"]  # both leases ran out by then

    # A crashed sync (still "running", its lock run out) started long ago: due again on schedule.
    with sessions.begin() as session:
        session.execute(update(SourceSync).values(started_at=now - timedelta(hours=2)))
        session.execute(update(Source).values(locked_until=now - timedelta(seconds=1)))
    assert due() == ["daily", "hourly"]


# --- documents ----------------------------------------------------------------------------------------------


def test_keep_document_upserts_by_source_and_key(session: Session) -> None:
    docs, wiki = add(session, "docs"), add(session, "wiki")
    first = store.keep_document(
        session, docs.id, "guide/sso", url="https://x/sso", title="SSO", etag='"v1"', content_hash="h1", extra={"n": 1}
    )
    store.keep_document(session, docs.id, "guide/scim", title="SCIM")
    store.keep_document(session, wiki.id, "guide/sso", title="Wiki SSO")  # same key, another source
    session.commit()
    synced_first = first.synced_at

    again = store.keep_document(session, docs.id, "guide/sso", etag='"v2"', content_hash="h2")
    session.commit()
    session.expunge_all()
    assert again.id == first.id
    held = store.documents_of(session, docs.id)
    assert sorted(held) == ["guide/scim", "guide/sso"]
    sso = held["guide/sso"]
    assert (sso.url, sso.title, sso.etag, sso.content_hash, sso.extra) == (
        "https://x/sso",
        "SSO",
        '"v2"',
        "h2",
        {"n": 1},
    )
    assert sso.synced_at >= synced_first
    scim = held["guide/scim"]
    assert (scim.url, scim.version, scim.last_modified, scim.extra, scim.updated) == ("", "", "", {}, None)
    assert store.documents_of(session, wiki.id)["guide/sso"].title == "Wiki SSO"
    assert store.source_counts(session, [docs.id, wiki.id, 9999]) == {docs.id: 2, wiki.id: 1, 9999: 0}
    assert store.source_counts(session, []) == {}

    with pytest.raises(ValueError, match=r"Unknown document field\(s\) \['body'\]"):
        store.keep_document(session, docs.id, "x", body="text")


def test_forget_documents(session: Session) -> None:
    docs, wiki = add(session, "docs"), add(session, "wiki")
    for i in range(1200):  # more keys than one DELETE takes
        store.keep_document(session, docs.id, f"page/{i}")
    store.keep_document(session, wiki.id, "page/0")
    session.commit()

    assert store.forget_documents(session, docs.id, [f"page/{i}" for i in range(1, 1200)] + ["page/5", "gone"]) == 1199
    assert store.forget_documents(session, docs.id, []) == 0
    session.commit()
    assert sorted(store.documents_of(session, docs.id)) == ["page/0"]
    assert sorted(store.documents_of(session, wiki.id)) == ["page/0"]


# --- migration 0008 -----------------------------------------------------------------------------------------


def test_0008_downgrades_and_upgrades_keeping_other_data(migrated: Engine) -> None:
    sessions: sessionmaker[Session] = session_factory(migrated)
    with sessions.begin() as session:
        store.bind_channel(session, "C1", "default")
        add(session, "docs")
        store.default_preset(session).source_filter = ["docs"]

    command.downgrade(alembic_config(migrated.url), "0007")
    inspector = inspect(migrated)
    assert not {"sources", "source_syncs", "source_documents"} & set(inspector.get_table_names())
    assert not {"source_filter", "tag_filter"} & {c["name"] for c in inspector.get_columns("presets")}

    upgrade_database(migrated)
    with sessions() as session:
        assert store.list_sources(session) == []
        assert store.default_preset(session).source_filter is None
        assert session.execute(text("SELECT channel_id FROM channel_bindings")).scalars().all() == ["C1"]
        add(session, "docs", kind="github")  # the recreated tables take rows again
        session.commit()
        assert store.source_named(session, "docs").kind == "github"


def test_the_database_knows_the_kinds_retrieval_has_connectors_for() -> None:
    """The kinds are checked in the database (store sits below retrieval, so it keeps its own list): the two lists
    must not drift, or a new connector's sources would be refused by the database."""
    from retrieval.sources.kinds import SOURCE_KINDS as CONNECTOR_KINDS
    from store.models import SOURCE_KINDS

    assert SOURCE_KINDS == CONNECTOR_KINDS
