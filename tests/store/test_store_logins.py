"""The sign-in queries on SQLite and PostgreSQL: a try is counted on all its keys or none, concurrent tries from
separate connections see each other's counts, rows hold digests, stale keys are pruned; sessions are found only
while live and their user active."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

import store
from store.logins import digest
from store.models import utcnow


def after(free: int, wait_s: float = 60) -> Callable[[int], timedelta]:
    """A back-off: `free` tries, then `wait_s` seconds."""
    return lambda attempts: timedelta(0) if attempts < free else timedelta(seconds=wait_s)


def rows(sessions: sessionmaker[Session]) -> dict[str, store.LoginThrottle]:
    with sessions() as session:
        return {row.key: row for row in session.scalars(select(store.LoginThrottle))}


def test_simultaneous_tries_on_separate_connections_get_exactly_the_free_ones(migrated: Engine) -> None:
    sessions = store.session_factory(migrated)
    now = utcnow()
    barrier = threading.Barrier(20)
    results: list[object] = []

    def one_try() -> None:
        barrier.wait()
        results.append(store.count_attempt(sessions, {"pair:alice|10.0.0.1": after(3), "name:alice": after(50)}, now))

    threads = [threading.Thread(target=one_try) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results.count(None) == 3  # counted: their passwords may be checked
    assert all(r == now + timedelta(seconds=60) for r in results if r is not None)
    stored = rows(sessions)
    assert stored[digest("pair:alice|10.0.0.1")].attempts == 3
    assert stored[digest("name:alice")].attempts == 3  # refused tries counted nowhere


def test_a_try_is_counted_on_every_key_or_on_none(session: Session, migrated: Engine) -> None:
    sessions = store.session_factory(migrated)
    now = utcnow()
    assert store.count_attempt(sessions, {"ip:a": after(1)}, now) is None  # ip:a now waits 60 s
    refused = store.count_attempt(sessions, {"ip:a": after(1), "name:bob": after(5)}, now)
    assert refused == now + timedelta(seconds=60)
    stored = rows(sessions)
    assert digest("name:bob") not in stored and stored[digest("ip:a")].attempts == 1
    assert store.count_attempt(sessions, {"ip:a": after(1), "name:bob": after(5)}, now + timedelta(seconds=60)) is None
    assert {row.attempts for row in rows(sessions).values()} == {1, 2}


def test_keys_are_stored_as_fixed_size_digests_and_cleared_or_refunded(migrated: Engine) -> None:
    sessions = store.session_factory(migrated)
    now = utcnow()
    long_key = "name:" + "x" * 100_000
    for _ in range(2):
        assert store.count_attempt(sessions, {long_key: after(10), "ip:b": after(2)}, now) is None
    stored = rows(sessions)
    assert {len(key) for key in stored} == {64}
    assert stored[digest("ip:b")].next_attempt_at == now + timedelta(seconds=60)
    store.clear_keys(sessions, [long_key])
    store.refund_attempt(sessions, "ip:b", after(2), now)
    stored = rows(sessions)
    assert list(stored) == [digest("ip:b")] and stored[digest("ip:b")].attempts == 1
    assert store.count_attempt(sessions, {"ip:b": after(2)}, now) is None  # the refund reopened it


def test_prune_keeps_recent_and_waiting_keys(migrated: Engine) -> None:
    sessions = store.session_factory(migrated)
    start = utcnow()
    store.count_attempt(sessions, {"old": after(5)}, start)
    store.count_attempt(sessions, {"waiting": after(0, wait_s=7200)}, start)
    store.count_attempt(sessions, {"recent": after(5)}, start + timedelta(minutes=50))
    now = start + timedelta(minutes=61)
    assert store.prune_throttle(sessions, now - timedelta(hours=1), now) == 1
    assert set(rows(sessions)) == {digest("waiting"), digest("recent")}


def stored_session(session: Session, token: str) -> store.AdminSession | None:
    return session.scalar(select(store.AdminSession).where(store.AdminSession.id == digest(token)))


def test_a_session_is_found_only_while_live_and_its_user_active(session: Session) -> None:
    now = utcnow()
    user = store.User(name="ana", password_hash="x", role="admin")
    session.add(user)
    session.flush()
    store.start_admin_session(session, user.id, "token-1", now + timedelta(hours=1), now)
    store.start_admin_session(session, user.id, "token-2", now + timedelta(seconds=1), now)
    assert stored_session(session, "token-1") is not None  # under its digest: the token itself is not stored
    assert store.session_user(session, "token-1", now).name == "ana"
    assert store.session_user(session, "token-2", now + timedelta(seconds=1)) is None  # expired
    assert store.session_user(session, "forged", now) is None
    user.active = False
    session.flush()
    assert store.session_user(session, "token-1", now) is None
    user.active = True
    store.start_admin_session(session, user.id, "token-3", now + timedelta(hours=1), now + timedelta(seconds=2))
    assert stored_session(session, "token-2") is None  # expired rows pruned
    store.end_admin_session(session, "token-3")
    assert store.session_user(session, "token-3", now) is None
    assert store.end_user_sessions(session, user.id) == 1
    assert store.session_user(session, "token-1", now) is None
