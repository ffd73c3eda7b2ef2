"""Sign-in queries: the throttle every admin process shares, and server-side admin sessions.

Throttle keys and session tokens are stored as SHA-256 hex digests, so a row has a fixed size whatever was typed
and a copy of the tables signs no one in. How many tries are free and how long the waits grow is the caller's
policy (a function from the attempts counted to the wait); these functions only count, atomically.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from store.models import AdminSession, LoginThrottle, User

log = logging.getLogger(__name__)

# A try that lost the database to a concurrent one (SQLite busy, a PostgreSQL deadlock) is refused for this long.
BUSY_RETRY = timedelta(seconds=1)
# `next_attempt_at` of a key with no wait: long past, so that a try whose clock read a moment earlier than a
# concurrent one's is not refused by that one's "now".
NO_WAIT = datetime(1970, 1, 1, tzinfo=timezone.utc)


def digest(text: str) -> str:
    """The SHA-256 hex digest of `text`: the stored form of a throttle key or a session token."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _insert_missing(session: Session, keys: Iterable[str], now: datetime) -> None:
    """Rows for keys not seen yet, without failing when a concurrent try inserts the same key first."""
    rows = [{"key": key, "attempts": 0, "next_attempt_at": NO_WAIT, "updated_at": now} for key in keys]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(postgresql.insert(LoginThrottle).values(rows).on_conflict_do_nothing(index_elements=["key"]))
    elif dialect == "sqlite":
        session.execute(sqlite.insert(LoginThrottle).values(rows).on_conflict_do_nothing(index_elements=["key"]))
    else:  # pragma: no cover - ragbot runs on SQLite and PostgreSQL
        raise NotImplementedError(f"The sign-in throttle does not support the {dialect} database.")


def count_attempt(
    sessions: sessionmaker[Session], keys: Mapping[str, Callable[[int], timedelta]], now: datetime
) -> datetime | None:
    """Count one sign-in try against every key of `keys` (plain text: hashed here), before its password is
    checked; each key maps to its back-off, the wait after that many tries.

    Returns None when the try was counted on every key (check the password), else the time before which no try
    is checked, and then nothing was counted. All or nothing, in one transaction: a key is counted only with
    `next_attempt_at <= now` in the UPDATE's own WHERE clause, so concurrent tries, in one process or several,
    wait for each other's row locks and see each other's counts; N simultaneous tries cannot all get through.
    Rows are locked in key order, so two tries never deadlock over them."""
    hashed = sorted((digest(key), backoff) for key, backoff in keys.items())
    with sessions() as session:
        try:
            _insert_missing(session, (key for key, _ in hashed), now)
            for key, backoff in hashed:
                attempts = session.scalar(
                    update(LoginThrottle)
                    .where(LoginThrottle.key == key, LoginThrottle.next_attempt_at <= now)
                    .values(attempts=LoginThrottle.attempts + 1, updated_at=now)
                    .returning(LoginThrottle.attempts)
                    .execution_options(synchronize_session=False)
                )
                if attempts is None:  # waiting out its back-off (or pruned under us: try again shortly)
                    blocked = session.scalar(select(LoginThrottle.next_attempt_at).where(LoginThrottle.key == key))
                    session.rollback()
                    return blocked if blocked is not None and blocked > now else now + BUSY_RETRY
                wait = backoff(attempts)
                if wait > timedelta(0):  # a free try leaves the key open
                    session.execute(
                        update(LoginThrottle)
                        .where(LoginThrottle.key == key)
                        .values(next_attempt_at=now + wait)
                        .execution_options(synchronize_session=False)
                    )
            session.commit()
        except OperationalError as exc:  # SQLite busy past its timeout, a PostgreSQL deadlock or serialization
            session.rollback()
            log.warning("Sign-in try refused, the throttle's database was busy: %s", str(exc.orig or exc)[:200])
            return now + BUSY_RETRY
    return None


def clear_keys(sessions: sessionmaker[Session], keys: Iterable[str]) -> None:
    """Forget the tries counted against `keys` (plain text): a sign-in succeeded."""
    with sessions.begin() as session:
        session.execute(delete(LoginThrottle).where(LoginThrottle.key.in_([digest(key) for key in keys])))


def refund_attempt(
    sessions: sessionmaker[Session], key: str, backoff: Callable[[int], timedelta], now: datetime
) -> None:
    """Give back one try counted against `key` (plain text), its wait shortened to match: a sign-in succeeded,
    and successes should not use up a shared key (an office's address) the way failures do."""
    hashed = digest(key)
    with sessions.begin() as session:
        row = session.get(LoginThrottle, hashed, with_for_update=True)
        if row is None or row.attempts <= 0:
            return
        row.attempts -= 1
        wait = backoff(row.attempts)
        row.next_attempt_at = min(row.next_attempt_at, now + wait) if wait > timedelta(0) else NO_WAIT


def prune_throttle(sessions: sessionmaker[Session], untouched_since: datetime, now: datetime) -> int:
    """Delete the keys no try touched since `untouched_since` and that are not waiting out a back-off; returns
    how many. This keeps the table's size to the keys tried within the window."""
    stale = (
        select(LoginThrottle.key)
        .where(LoginThrottle.updated_at < untouched_since, LoginThrottle.next_attempt_at <= now)
        .with_for_update(skip_locked=True)  # PostgreSQL: pass over rows a try holds, never wait on (or for) one
    )
    with sessions.begin() as session:
        result = session.execute(
            delete(LoginThrottle).where(LoginThrottle.key.in_(stale)).execution_options(synchronize_session=False)
        )
        return result.rowcount


def start_admin_session(session: Session, user_id: int, token: str, expires_at: datetime, now: datetime) -> None:
    """Record a signed-in session for `token` (stored hashed) and drop sessions that have expired; flushes."""
    session.execute(
        delete(AdminSession).where(AdminSession.expires_at <= now).execution_options(synchronize_session=False)
    )
    session.add(AdminSession(id=digest(token), user_id=user_id, created_at=now, expires_at=expires_at))
    session.flush()


def session_user(session: Session, token: str, now: datetime) -> User | None:
    """The active user whose unexpired session `token` names, else None."""
    return session.scalar(
        select(User)
        .join(AdminSession, AdminSession.user_id == User.id)
        .where(AdminSession.id == digest(token), AdminSession.expires_at > now, User.active)
    )


def end_admin_session(session: Session, token: str) -> None:
    """Forget the session `token` names (signing out); a no-op when there is none."""
    session.execute(
        delete(AdminSession).where(AdminSession.id == digest(token)).execution_options(synchronize_session=False)
    )


def end_user_sessions(session: Session, user_id: int) -> int:
    """End every open session of a user (deactivated, or their password changed); returns how many."""
    result = session.execute(
        delete(AdminSession).where(AdminSession.user_id == user_id).execution_options(synchronize_session=False)
    )
    return result.rowcount
