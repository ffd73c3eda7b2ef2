"""Sign-in that holds (issue 13), through the real admin app on SQLite and on PostgreSQL: tries counted in the
database before the password is checked, back-off rather than lock-out, bounded input, sessions that sign-out, a
password change and deactivation end, and a signing key that cannot be guessed."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading
import tracemalloc
from base64 import b64encode
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import store
from admin.security import SignInThrottle
from store.models import utcnow
from tests.admin.conftest import PASSWORD, AdminClient, csrf_from, seeded_sessions
from tests.store.conftest import db_url, postgres_admin  # noqa: F401  (fixtures: every test on SQLite and PostgreSQL)

KEY = "k" * 48  # a production-worthy ADMIN_SECRET_KEY for these apps
ATTACKER, OWNER = "10.0.0.66", "10.0.0.1"


class Clock:
    """A clock that moves only when told: back-offs are checked without sleeping."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:  # noqa: F811  (overrides the SQLite-only one)
    yield from seeded_sessions(db_url)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_app(sessions: sessionmaker[Session], clock: Clock, **kwargs: Any):
    from admin import create_admin_app
    from bot.app.web import create_http_app

    throttle = SignInThrottle(sessions, clock=clock)
    return create_http_app(None, create_admin_app(sessions, lambda: None, secret_key=KEY, throttle=throttle, **kwargs))


@pytest.fixture
def app(sessions: sessionmaker[Session], clock: Clock):
    return make_app(sessions, clock)


def client_at(app: Any, address: str = OWNER) -> AdminClient:
    return AdminClient(app, headers={"accept": "text/html"}, client=(address, 50000))


def try_sign_in(client: TestClient, name: str, password: str, token: str | None = None):
    token = token or csrf_from(client.get("/admin/login").text)
    return client.post(
        "/admin/login", data={"name": name, "password": password, "csrf_token": token}, follow_redirects=False
    )


def url_of(sessions: sessionmaker[Session]) -> str:
    return sessions.kw["bind"].url.render_as_string(hide_password=False)


def throttle_rows(sessions: sessionmaker[Session]) -> list[store.LoginThrottle]:
    with sessions() as session:
        return list(session.scalars(select(store.LoginThrottle)))


def session_rows(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(store.AdminSession))


def signed_in(client: TestClient) -> bool:
    response = client.get("/admin/", follow_redirects=False)
    assert response.status_code in (200, 303), response.status_code
    return response.status_code == 200


# --- counted before the password is checked -------------------------------------------------------------------


def test_30_simultaneous_guesses_only_the_free_tries_are_checked_then_the_right_password_waits(
    app, sessions, clock: Clock
) -> None:
    first = client_at(app)
    token = csrf_from(first.get("/admin/login").text)
    cookies = dict(first.cookies)
    barrier = threading.Barrier(30)
    statuses: list[int] = []

    def guess(i: int) -> None:
        client = TestClient(app, cookies=cookies, client=(OWNER, 50000 + i))
        barrier.wait()
        statuses.append(try_sign_in(client, "alice", f"wrong guess {i}", token).status_code)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [401] * 5 + [429] * 25  # the pair's 5 free tries checked, every other refused
    # ...and the right password, next, is refused too: the pair is waiting out its back-off
    blocked = try_sign_in(first, "alice", PASSWORD, token)
    assert blocked.status_code == 429 and "Too many failed sign-ins" in blocked.text
    assert blocked.headers["retry-after"] == "1"
    clock.advance(1)  # back-off, not a wall
    assert try_sign_in(first, "alice", PASSWORD, token).status_code == 303


def test_the_back_off_doubles_per_pair_and_refused_tries_count_nothing(app, clock: Clock) -> None:
    client = client_at(app, ATTACKER)
    token = csrf_from(client.get("/admin/login").text)
    for _ in range(5):
        assert try_sign_in(client, "alice", "nope", token).status_code == 401
    waits = []
    for _ in range(4):
        refused = try_sign_in(client, "alice", "nope", token)
        assert refused.status_code == 429
        assert try_sign_in(client, "alice", "nope", token).status_code == 429  # refused again: nothing counted
        waits.append(int(refused.headers["retry-after"]))
        clock.advance(waits[-1])
        assert try_sign_in(client, "alice", "nope", token).status_code == 401
    assert waits == [1, 2, 4, 8]


# --- someone else's guesses cannot keep the right password out for long ----------------------------------------


def test_someone_elses_guesses_from_another_address_do_not_lock_the_owner_out(app) -> None:
    attacker, owner = client_at(app, ATTACKER), client_at(app, OWNER)
    for _ in range(5):
        assert try_sign_in(attacker, "alice", "guess").status_code == 401
    assert try_sign_in(attacker, "alice", PASSWORD).status_code == 429  # the guesser's own pair waits
    assert try_sign_in(owner, "alice", PASSWORD).status_code == 303  # the owner gets in at once


def test_guesses_from_many_addresses_keep_the_owner_out_no_longer_than_the_name_cap(app, clock: Clock) -> None:
    for n in range(10):  # 50 guesses at alice from 10 addresses: the name's back-off reaches its cap
        attacker = client_at(app, f"10.0.1.{n}")
        for _ in range(5):
            status = try_sign_in(attacker, "alice", "guess").status_code
            assert status in (401, 429)
            clock.advance(1)
    owner = client_at(app, OWNER)
    refused = try_sign_in(owner, "alice", PASSWORD)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) <= 30
    clock.advance(30)  # the name's cap: after it, the right password gets in
    assert try_sign_in(owner, "alice", PASSWORD).status_code == 303


def test_wrong_guesses_at_one_name_do_not_lock_out_others_at_the_same_address(app) -> None:
    office = client_at(app, OWNER)
    for _ in range(5):
        assert try_sign_in(office, "sam", "typo").status_code == 401
    colleague = client_at(app, OWNER)
    assert try_sign_in(colleague, "alice", PASSWORD).status_code == 303


# --- bounded input ----------------------------------------------------------------------------------------------


def test_1mb_names_are_refused_before_any_work_and_leave_nothing_behind(
    app, sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    import admin.routes.auth as auth

    checked = []
    monkeypatch.setattr(auth, "verify_password", lambda *args: checked.append(args) or False)
    client = client_at(app, ATTACKER)
    token = csrf_from(client.get("/admin/login").text)
    huge = "x" * 1_000_000

    response = try_sign_in(client, huge, "guess", token)
    assert response.status_code in (400, 413)  # the app's body limit, or the form's bounds
    assert huge[:1000] not in response.text  # not echoed back
    for name, password in (("x" * 100_000, "guess"), ("alice", "p" * 1025), ("", "guess"), ("alice", "")):
        refused = try_sign_in(client, name, password, token)  # within the body limit: the form's own bounds
        assert refused.status_code == 400 and "at most 64 characters" in refused.text
        assert name not in refused.text or not name
    assert checked == [] and throttle_rows(sessions) == []

    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(10):
            assert try_sign_in(client, huge + "y", "guess", token).status_code in (400, 413)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    kept = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert kept < 500_000, f"10 refused 1 MB names kept {kept} bytes"  # the old limiter kept each name: 10 MB
    assert throttle_rows(sessions) == []

    longest = "n" * 64  # the longest name allowed: counted, its keys stored as fixed-size digests
    assert try_sign_in(client, longest, "guess", token).status_code == 401
    assert len(checked) == 1
    rows = throttle_rows(sessions)
    assert len(rows) == 3 and {len(row.key) for row in rows} == {64}
    assert longest not in {row.key for row in rows}


def test_keys_untouched_for_the_window_are_pruned(app, sessions, clock: Clock) -> None:
    client = client_at(app, ATTACKER)
    for n in range(3):
        assert try_sign_in(client, f"nobody{n}", "guess").status_code == 401
    assert len(throttle_rows(sessions)) == 7  # a pair and a name each, one address
    clock.advance(3601)
    assert try_sign_in(client, "alice", "guess").status_code == 401
    assert len(throttle_rows(sessions)) == 3  # only the last try's keys are left


# --- shared across processes ------------------------------------------------------------------------------------


def test_two_app_instances_on_one_database_share_the_count(sessions, clock: Clock) -> None:
    other_engine = store.make_engine(url_of(sessions))  # a second process's own engine and pool
    try:
        first = make_app(sessions, clock)
        second = make_app(store.session_factory(other_engine), clock)
        clients = [client_at(first, ATTACKER), client_at(second, ATTACKER)]
        for n in range(5):
            assert try_sign_in(clients[n % 2], "alice", "guess").status_code == 401
        for client in clients:
            assert try_sign_in(client, "alice", PASSWORD).status_code == 429
    finally:
        other_engine.dispose()


# --- sessions that end ------------------------------------------------------------------------------------------


def test_sign_out_revokes_the_cookie(app, sessions) -> None:
    client = client_at(app).login("alice")
    cookie = client.cookies["ragbot_admin"]
    assert signed_in(client) and session_rows(sessions) == 1
    assert client.form("/admin/logout", {}).status_code == 303
    assert session_rows(sessions) == 0
    replay = client_at(app)
    replay.cookies.set("ragbot_admin", cookie)
    response = replay.get("/admin/", follow_redirects=False)
    assert response.status_code == 303 and "/admin/login" in response.headers["location"]


def test_every_sign_in_gets_a_new_session_token(app, sessions) -> None:
    client = client_at(app).login("alice")
    old = client.cookies["ragbot_admin"]
    client.login("alice")
    assert client.cookies["ragbot_admin"] != old and session_rows(sessions) == 1  # the old one ended
    replay = client_at(app)
    replay.cookies.set("ragbot_admin", old)
    assert not signed_in(replay)


def test_a_password_change_ends_every_open_session(app, sessions) -> None:
    from admin.users import set_password, user_named

    laptop, phone, other = client_at(app).login("alice"), client_at(app).login("alice"), client_at(app).login("rita")
    with sessions.begin() as session:
        assert set_password(session, user_named(session, "alice"), "a new long password") == 2
    assert not signed_in(laptop) and not signed_in(phone)
    assert signed_in(other)  # other users keep theirs
    assert try_sign_in(laptop, "alice", PASSWORD).status_code == 401
    assert try_sign_in(laptop, "alice", "a new long password").status_code == 303


def test_deactivation_ends_open_sessions_and_sign_in(app, sessions) -> None:
    from admin.users import activate, deactivate, user_named

    client = client_at(app).login("sam")
    with sessions.begin() as session:
        assert deactivate(session, user_named(session, "sam")) == 1
    assert not signed_in(client)
    response = try_sign_in(client, "sam", PASSWORD)
    assert response.status_code == 401 and "Wrong name or password" in response.text
    with sessions.begin() as session:
        activate(session, user_named(session, "sam"))
    assert try_sign_in(client, "sam", PASSWORD).status_code == 303


def test_an_expired_session_signs_no_one_in_and_is_pruned_at_the_next_sign_in(app, sessions) -> None:
    client = client_at(app).login("alice")
    with sessions.begin() as session:
        for row in session.scalars(select(store.AdminSession)):
            row.expires_at = utcnow() - timedelta(seconds=1)
    assert not signed_in(client)
    client_at(app).login("rita")
    assert session_rows(sessions) == 1  # rita's; alice's expired row went


def test_the_cli_changes_a_password_and_switches_a_user_off_ending_their_sessions(
    app, sessions, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.e2e.test_cli import run_cli

    alice, rita = client_at(app).login("alice"), client_at(app).login("rita")
    monkeypatch.setenv("DATABASE_URL", url_of(sessions))
    monkeypatch.setenv("RAGBOT_ADMIN_PASSWORD", "another long password")
    code, out, _ = run_cli(capsys, "admin", "set-password", "alice")
    assert code == 0 and "1 open session(s) ended" in out
    code, out, _ = run_cli(capsys, "admin", "deactivate", "rita")
    assert code == 0 and "Switched off 'rita'" in out
    assert not signed_in(alice) and not signed_in(rita)
    assert try_sign_in(alice, "alice", "another long password").status_code == 303
    assert try_sign_in(rita, "rita", PASSWORD).status_code == 401
    code, _, err = run_cli(capsys, "admin", "set-password", "nobody")
    assert code == 1 and "No user named 'nobody'" in err


# --- the signing key --------------------------------------------------------------------------------------------


def forged_cookie(secret_key: str, data: dict[str, Any]) -> str:
    """What Starlette's SessionMiddleware would set for `data`, signed with `secret_key`."""
    return TimestampSigner(secret_key).sign(b64encode(json.dumps(data).encode())).decode()


def test_a_cookie_forged_with_the_key_but_no_session_row_gets_the_login_page(app, sessions) -> None:
    with sessions() as session:
        alice = session.scalar(select(store.User).where(store.User.name == "alice"))
    for data in ({"user_id": alice.id, "csrf": "x"}, {"sid": "made-up-token", "user_id": alice.id, "csrf": "x"}):
        client = client_at(app, ATTACKER)
        client.cookies.set("ragbot_admin", forged_cookie(KEY, data))
        response = client.get("/admin/users", follow_redirects=False)
        assert response.status_code == 303 and "/admin/login" in response.headers["location"]


@pytest.mark.parametrize("key", ["k", "x" * 31])
def test_production_refuses_a_short_secret_key(sessions, key: str) -> None:
    from admin import create_admin_app
    from admin.app import AdminConfigError

    with pytest.raises(AdminConfigError, match="at least 32"):
        create_admin_app(sessions, lambda: None, secret_key=key, production=True)
    create_admin_app(sessions, lambda: None, secret_key="x" * 32, production=True)


def test_development_warns_about_a_short_secret_key(sessions, caplog: pytest.LogCaptureFixture) -> None:
    from admin import create_admin_app

    create_admin_app(sessions, lambda: None, secret_key="short")
    assert "ADMIN_SECRET_KEY has 5 characters" in caplog.text


def test_ragbot_admin_serve_in_production_with_a_short_key_refuses_to_start(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.db'}",
        "RAGBOT_ENV": "production",
        "ADMIN_SECRET_KEY": "k",
    }
    done = subprocess.run(
        [str(Path(sys.executable).with_name("ragbot")), "admin", "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stderr
    assert "ADMIN_SECRET_KEY" in done.stderr and "at least 32" in done.stderr and "Traceback" not in done.stderr
