"""People and teams in the admin app: admins invite people, change their role and team, switch them off and on,
reset passwords and manage teams; team admins see their own team only and change nothing; every change is
audited and every form needs the CSRF token."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import store
from tests.admin.conftest import PASSWORD, AdminClient

NEW_PASSWORD = "another long password"


def user_id(sessions: sessionmaker[Session], name: str) -> int:
    with sessions() as session:
        return session.scalar(select(store.User.id).where(store.User.name == name))


def person(sessions: sessionmaker[Session], name: str) -> store.User:
    with sessions() as session:
        return session.scalar(select(store.User).where(store.User.name == name))


def audit_of(sessions: sessionmaker[Session], target: str) -> list[tuple[str, str, dict | None, dict | None]]:
    with sessions() as session:
        entries = session.scalars(
            select(store.AuditEntry).where(store.AuditEntry.target == target).order_by(store.AuditEntry.id)
        ).all()
        return [(e.actor, e.action, e.before, e.after) for e in entries]


def sessions_of(sessions: sessionmaker[Session], name: str) -> int:
    with sessions() as session:
        uid = session.scalar(select(store.User.id).where(store.User.name == name))
        return session.scalar(
            select(func.count()).select_from(store.AdminSession).where(store.AdminSession.user_id == uid)
        )


def test_an_admin_invites_a_person_with_a_password_and_changes_their_role(as_user, sessions) -> None:
    alice = as_user("alice")
    response = alice.form(
        "/admin/users", {"name": "nora", "email": "", "role": "reviewer", "team": "sales", "password": NEW_PASSWORD}
    )
    assert response.status_code == 303
    nora = person(sessions, "nora")
    assert response.headers["location"].endswith(f"/admin/users/{nora.id}")
    assert (nora.role, nora.team, nora.active, nora.password_hash is not None) == ("reviewer", "sales", True, True)

    assert alice.form(f"/admin/users/{nora.id}/role", {"role": "team_admin", "team": "sales"}).status_code == 303
    assert person(sessions, "nora").role == "team_admin"
    assert [(actor, action) for actor, action, _, _ in audit_of(sessions, "user nora")] == [
        ("alice", "user.create"),
        ("alice", "user.role"),
    ]
    created = audit_of(sessions, "user nora")[0][3]
    assert created == {"role": "reviewer", "team": "sales", "email": None, "password": True}
    assert "password_hash" not in str(audit_of(sessions, "user nora"))

    page = alice.get(f"/admin/users/{nora.id}")
    assert page.status_code == 200 and "team_admin" in page.text and "sales" in page.text


def test_an_invited_person_signs_in_with_the_password_the_admin_set(as_user, admin_app) -> None:
    alice = as_user("alice")
    data = {"name": "nora", "role": "reviewer", "team": "", "password": NEW_PASSWORD}
    assert alice.form("/admin/users", data).status_code == 303
    with AdminClient(admin_app, headers={"accept": "text/html"}) as nora:
        assert nora.login("nora", NEW_PASSWORD).get("/admin/rankings").status_code == 200
        assert nora.get("/admin/users").status_code == 403  # a reviewer manages nobody


def test_invite_refuses_what_does_not_fit(as_user, sessions) -> None:
    alice = as_user("alice")
    cases = [
        ({"name": "bad name!", "role": "reviewer", "password": NEW_PASSWORD}, "Invalid user name"),
        ({"name": "nora", "role": "boss", "password": NEW_PASSWORD}, "Unknown role"),
        ({"name": "nora", "role": "team_admin", "team": "", "password": NEW_PASSWORD}, "needs a team"),
        ({"name": "nora", "role": "reviewer", "team": "nope", "password": NEW_PASSWORD}, "No team named 'nope'"),
        ({"name": "nora", "role": "reviewer", "password": "short"}, "too short"),
        ({"name": "nora", "role": "reviewer"}, "Give a password, or an email"),
        ({"name": "nora", "role": "reviewer", "email": "not-an-email"}, "Invalid email"),
        ({"name": "sam", "role": "reviewer", "password": NEW_PASSWORD}, "already exists"),
    ]
    for data, message in cases:
        response = alice.form("/admin/users", data)
        assert response.status_code == 400, data
        assert message in html.unescape(response.text), (data, response.text)
        assert "Traceback" not in response.text
    assert person(sessions, "nora") is None


def test_an_admin_changes_a_persons_team(as_user, sessions) -> None:
    alice = as_user("alice")
    rita = user_id(sessions, "rita")
    assert alice.form(f"/admin/users/{rita}/role", {"role": "reviewer", "team": "legal"}).status_code == 303
    assert person(sessions, "rita").team == "legal"
    assert audit_of(sessions, "user rita")[-1] == (
        "alice",
        "user.team",
        {"role": "reviewer", "team": None},
        {"role": "reviewer", "team": "legal"},
    )
    # A team that does not exist is refused, not created behind the admin's back.
    refused = alice.form(f"/admin/users/{rita}/role", {"role": "reviewer", "team": "nope"})
    assert refused.status_code == 400 and "No team named 'nope'" in html.unescape(refused.text)
    assert person(sessions, "rita").team == "legal"


def test_deactivation_ends_an_open_session_at_its_next_request(as_user, admin_app, sessions) -> None:
    alice, rita = as_user("alice"), as_user("rita")
    assert rita.get("/admin/rankings").status_code == 200
    rita_id = user_id(sessions, "rita")

    assert alice.form(f"/admin/users/{rita_id}/deactivate", {}).status_code == 303
    assert sessions_of(sessions, "rita") == 0
    refused = rita.get("/admin/rankings", follow_redirects=False)
    assert refused.status_code == 303 and "/admin/login" in refused.headers["location"]
    # Signing in again is refused too, until an admin switches her on.
    with AdminClient(admin_app, headers={"accept": "text/html"}) as again, pytest.raises(AssertionError):
        again.login("rita")
    assert alice.form(f"/admin/users/{rita_id}/activate", {}).status_code == 303
    assert person(sessions, "rita").active
    assert as_user("rita").get("/admin/rankings").status_code == 200
    actions = [action for _, action, _, _ in audit_of(sessions, "user rita")]
    assert actions == ["user.deactivate", "user.activate"]
    assert audit_of(sessions, "user rita")[0][3] == {"active": False, "sessions_ended": 1}


def test_a_password_reset_ends_the_sessions_and_the_new_password_works(as_user, admin_app, sessions) -> None:
    alice, rita = as_user("alice"), as_user("rita")
    rita_id = user_id(sessions, "rita")
    short = alice.form(f"/admin/users/{rita_id}/password", {"password": "short"})
    assert short.status_code == 400 and "too short" in short.text
    assert rita.get("/admin/rankings").status_code == 200

    assert alice.form(f"/admin/users/{rita_id}/password", {"password": NEW_PASSWORD}).status_code == 303
    assert rita.get("/admin/rankings", follow_redirects=False).status_code == 303  # to the sign-in page
    with AdminClient(admin_app, headers={"accept": "text/html"}) as fresh:
        assert fresh.login("rita", NEW_PASSWORD).get("/admin/rankings").status_code == 200
    with AdminClient(admin_app, headers={"accept": "text/html"}) as old, pytest.raises(AssertionError):
        old.login("rita", PASSWORD)
    assert audit_of(sessions, "user rita") == [("alice", "user.password", None, {"sessions_ended": 1})]


def test_the_last_active_admin_is_kept(as_user, sessions) -> None:
    alice = as_user("alice")
    alice_id = user_id(sessions, "alice")
    myself = alice.form(f"/admin/users/{alice_id}/deactivate", {})
    assert myself.status_code == 400 and "cannot switch yourself off" in myself.text
    demoted = alice.form(f"/admin/users/{alice_id}/role", {"role": "reviewer", "team": ""})
    assert demoted.status_code == 400 and "last active admin" in demoted.text
    assert person(sessions, "alice").role == "admin"

    # With a second admin, the first may step down; the second then cannot switch off the (now) last admin.
    rita_id = user_id(sessions, "rita")
    assert alice.form(f"/admin/users/{rita_id}/role", {"role": "admin", "team": ""}).status_code == 303
    assert alice.form(f"/admin/users/{alice_id}/role", {"role": "reviewer", "team": ""}).status_code == 303
    rita = as_user("rita")
    last = rita.form(f"/admin/users/{rita_id}/role", {"role": "reviewer", "team": ""})
    assert last.status_code == 400 and "last active admin" in last.text
    assert person(sessions, "rita").role == "admin"


def test_a_team_admin_sees_only_their_team_and_changes_nothing(as_user, sessions) -> None:
    alice, sam = as_user("alice"), as_user("sam")
    data = {"name": "sue", "role": "reviewer", "team": "sales", "password": NEW_PASSWORD}
    assert alice.form("/admin/users", data).status_code == 303
    page = sam.get("/admin/users")
    assert page.status_code == 200
    assert "sue" in page.text and "sam" in page.text
    assert "lee" not in page.text and "alice" not in page.text and "rita" not in page.text
    assert 'action="/admin/users/' not in page.text and "Invite" not in page.text  # read-only

    sam_id, sue_id, lee_id = (user_id(sessions, n) for n in ("sam", "sue", "lee"))
    assert sam.get(f"/admin/users/{sue_id}").status_code == 200
    assert sam.get(f"/admin/users/{lee_id}").status_code == 403  # another team's person
    assert sam.get(f"/admin/users/{user_id(sessions, 'alice')}").status_code == 403  # no team
    forbidden = [
        (f"/admin/users/{sam_id}/role", {"role": "admin", "team": "sales"}),  # raising their own role
        (f"/admin/users/{sue_id}/role", {"role": "team_admin", "team": "sales"}),
        (f"/admin/users/{lee_id}/role", {"role": "reviewer", "team": "legal"}),
        (f"/admin/users/{sue_id}/deactivate", {}),
        (f"/admin/users/{lee_id}/deactivate", {}),
        (f"/admin/users/{sue_id}/password", {"password": NEW_PASSWORD}),
        ("/admin/users", {"name": "x", "role": "admin", "password": NEW_PASSWORD}),
        ("/admin/teams", {"name": "mine"}),
        (f"/admin/teams/{_team_id(sessions, 'sales')}/rename", {"name": "sales2"}),
    ]
    for url, data in forbidden:
        assert sam.form(url, data).status_code == 403, url
    assert (person(sessions, "sam").role, person(sessions, "sue").role) == ("team_admin", "reviewer")
    assert person(sessions, "sue").active and person(sessions, "x") is None
    assert "sales" in store_team_names(sessions) and "mine" not in store_team_names(sessions)


def _team_id(sessions: sessionmaker[Session], name: str) -> int:
    with sessions() as session:
        return session.scalar(select(store.Team.id).where(store.Team.name == name))


def store_team_names(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return store.team_names(session)


def test_teams_are_listed_created_and_renamed_with_their_presets_and_people(as_user, sessions) -> None:
    with sessions.begin() as session:
        session.add(store.Preset(name="sales-faq", team="sales", instruction="Sales passages first"))
    alice = as_user("alice")
    page = alice.get("/admin/users")
    assert "<td>sales</td><td>1</td><td>1</td>" in page.text  # sam; the preset
    assert "<td>default</td><td>0</td><td>1</td>" in page.text  # the default preset

    assert alice.form("/admin/teams", {"name": "support"}).status_code == 303
    taken = alice.form("/admin/teams", {"name": "support"})
    assert taken.status_code == 400 and "exists already" in taken.text
    bad = alice.form("/admin/teams", {"name": "a b"})
    assert bad.status_code == 400 and "Invalid team name" in bad.text

    assert alice.form(f"/admin/teams/{_team_id(sessions, 'sales')}/rename", {"name": "revenue"}).status_code == 303
    # The preset and the people follow the rename: one team, not two strings.
    assert person(sessions, "sam").team == "revenue"
    with sessions() as session:
        assert session.scalar(select(store.Preset.team).where(store.Preset.name == "sales-faq")) == "revenue"
    assert store_team_names(sessions) == ["default", "legal", "revenue", "support"]
    clash = alice.form(f"/admin/teams/{_team_id(sessions, 'revenue')}/rename", {"name": "legal"})
    assert clash.status_code == 400 and "exists already" in clash.text
    # sam, a team admin of the renamed team, still sees his team.
    assert "People of team revenue" in as_user("sam").get("/admin/users").text
    assert audit_of(sessions, "team support") == [("alice", "team.create", None, {"name": "support"})]
    assert audit_of(sessions, "team revenue") == [("alice", "team.rename", {"name": "sales"}, {"name": "revenue"})]


def test_every_new_form_needs_the_csrf_token(as_user, sessions) -> None:
    alice = as_user("alice")
    rita_id = user_id(sessions, "rita")
    posts = [
        ("/admin/users", {"name": "nora", "role": "reviewer", "password": NEW_PASSWORD}),
        (f"/admin/users/{rita_id}/role", {"role": "admin", "team": ""}),
        (f"/admin/users/{rita_id}/deactivate", {}),
        (f"/admin/users/{rita_id}/activate", {}),
        (f"/admin/users/{rita_id}/password", {"password": NEW_PASSWORD}),
        ("/admin/teams", {"name": "support"}),
        (f"/admin/teams/{_team_id(sessions, 'sales')}/rename", {"name": "revenue"}),
    ]
    for url, data in posts:
        for token in (None, "wrong"):
            sent = data if token is None else {**data, "csrf_token": token}
            response = alice.post(url, data=sent, follow_redirects=False)
            assert response.status_code == 403 and "CSRF" in response.text, url
    rita = person(sessions, "rita")
    assert (rita.role, rita.active, person(sessions, "nora")) == ("reviewer", True, None)
    assert store_team_names(sessions) == ["default", "legal", "sales"]
    # The pages' own forms carry the token.
    for page in ("/admin/users", f"/admin/users/{rita_id}"):
        html = alice.get(page).text
        assert html.count("<form") == html.count('name="csrf_token"')


def test_create_user_works_on_a_fresh_database(tmp_path: Path, monkeypatch, capsys) -> None:
    from tests.e2e.test_cli import run_cli

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("RAGBOT_ADMIN_PASSWORD", "a long enough password")
    code, out, _ = run_cli(capsys, "admin", "create-user", "first", "--role", "admin")
    assert code == 0 and "Created admin 'first'" in out
    code, out, _ = run_cli(capsys, "admin", "create-user", "tina", "--role", "team_admin", "--team", "default")
    assert code == 0
    engine = store.make_engine(url)
    with store.session_factory(engine)() as session:
        assert store.team_names(session) == ["default"]
        assert session.scalar(select(store.User.team).where(store.User.name == "tina")) == "default"
    engine.dispose()


def test_writers_of_a_team_name_create_its_row(sessions: sessionmaker[Session]) -> None:
    """Every preset or user naming a team gets its row (the foreign key would refuse it otherwise)."""
    from admin.users import create_user

    with sessions.begin() as session:
        session.add(store.Preset(name="ops-faq", team="ops", instruction="Ops passages first"))
        create_user(session, "olga", PASSWORD, "team_admin", "it")
    assert {"ops", "it"} <= set(store_team_names(sessions))
