"""Passwords (argon2), CSRF tokens, session tokens and the sign-in throttle."""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

import store
from store.models import utcnow

log = logging.getLogger(__name__)

# How long a sign-in lasts (the server-side session and the signed cookie that names it).
SESSION_TTL = timedelta(hours=12)
# ADMIN_SECRET_KEY signs the cookies: shorter keys can be guessed offline from one cookie.
MIN_SECRET_KEY_CHARS = 32
# Bounds on the sign-in form, checked before anything is hashed, counted or stored.
MAX_NAME_CHARS = 64
MAX_PASSWORD_CHARS = 1024

_hasher = PasswordHasher()
# A real hash to verify against when the user does not exist: the answer takes as long either way.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def same_token(expected: str | None, given: str | None) -> bool:
    return bool(expected and given) and secrets.compare_digest(str(expected), str(given))


def new_session_token() -> str:
    """The secret a signed-in browser holds (in the signed cookie); the database keeps only its SHA-256."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Backoff:
    """`free` tries without a wait, then a wait of `first` that doubles with every further try, never longer
    than `cap`."""

    free: int
    first: timedelta
    cap: timedelta

    def __call__(self, attempts: int) -> timedelta:
        """The wait before the next try, after `attempts` tries."""
        if attempts < self.free:
            return timedelta(0)
        return min(self.cap, self.first * 2 ** min(attempts - self.free, 40))


class SignInThrottle:
    """Sign-in tries counted in the database (store.LoginThrottle), so every admin process shares the counts,
    and counted before the password is checked, atomically, so simultaneous guesses cannot all be checked.

    Three keys per try, each a back-off rather than a wall (defaults):
    - name and address together: 5 free tries, then 1 s doubling up to 15 minutes (the guesser's own pair);
    - the name alone: 10 free tries, then 1 s doubling up to 30 seconds, so guesses from other addresses slow a
      name down but keep its owner out for at most 30 seconds after the last one;
    - the address alone: 20 free tries, then 1 s doubling up to 5 minutes (an office may share one address).
    A refused try counts nothing. A successful sign-in clears the pair and the name and gives its try back to
    the address. Keys untouched for `window` (default 1 hour) are pruned, and the stored keys are SHA-256
    digests, so the table's size follows the tries of the last hour, not what was typed.
    `clock` and the back-offs are arguments so that tests can move time instead of waiting."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        pair: Backoff = Backoff(5, timedelta(seconds=1), timedelta(minutes=15)),
        name: Backoff = Backoff(10, timedelta(seconds=1), timedelta(seconds=30)),
        address: Backoff = Backoff(20, timedelta(seconds=1), timedelta(minutes=5)),
        window: timedelta = timedelta(hours=1),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.pair, self.name, self.address = pair, name, address
        self.window = window
        self.clock = clock

    @staticmethod
    def _keys(name: str, address: str) -> tuple[str, str, str]:
        name = name.lower()
        return f"pair:{name}|{address}", f"name:{name}", f"ip:{address}"

    def attempt(self, name: str, address: str) -> int:
        """Count a try of `name` from `address`: 0 when it was counted (check the password now), else the
        seconds to wait before trying again (nothing was counted)."""
        now = self.clock()
        pair, name_key, address_key = self._keys(name, address)
        try:
            store.prune_throttle(self.sessions, now - self.window, now)
        except SQLAlchemyError as exc:  # pruning is housekeeping: never the reason a sign-in fails
            log.warning("Could not prune the sign-in throttle: %s", exc)
        retry_at = store.count_attempt(
            self.sessions, {pair: self.pair, name_key: self.name, address_key: self.address}, now
        )
        if retry_at is None:
            return 0
        return max(1, math.ceil((retry_at - now).total_seconds()))

    def succeeded(self, name: str, address: str) -> None:
        """The password was right: clear the pair and the name, give the address its try back."""
        pair, name_key, address_key = self._keys(name, address)
        store.clear_keys(self.sessions, (pair, name_key))
        store.refund_attempt(self.sessions, address_key, self.address, self.clock())
