"""Sign-in, sessions, roles, CSRF: every route is closed without a session, every change needs its token."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount

from tests.admin.conftest import PASSWORD, AdminClient, csrf_from


def admin_routes(app) -> list[tuple[str, str]]:
    """(method, path) of every route of the mounted admin app, path parameters filled with 1."""
    [mount] = [r for r in app.routes if isinstance(r, Mount) and r.path == "/admin"]

    def walk(routes) -> list[APIRoute]:  # FastAPI >= 0.16x keeps included routers as wrappers
        found = []
        for route in routes:
            if isinstance(route, APIRoute):
                found.append(route)
            elif getattr(route, "original_router", None) is not None:
                found.extend(walk(route.original_router.routes))
        return found

    return [
        (method, "/admin" + re.sub(r"\{[^}]+\}", "1", route.path))
        for route in walk(mount.app.routes)
        for method in sorted(route.methods - {"HEAD"})
    ]


def test_every_route_without_a_session_is_refused(admin_app, client: AdminClient) -> None:
    routes = admin_routes(admin_app)
    assert len(routes) >= 5
    open_routes = {("GET", "/admin/login"), ("POST", "/admin/login")}
    for method, path in routes:
        if (method, path) in open_routes:
            continue
        response = client.request(method, path, follow_redirects=False)
        assert response.status_code in (303, 401, 403), (method, path, response.status_code)
        if method == "GET":
            assert response.status_code == 303 and "/admin/login" in response.headers["location"]
        # and a JSON client gets 401 (or 403 for a missing CSRF token on a change)
        api = client.request(method, path, headers={"accept": "application/json"}, follow_redirects=False)
        assert api.status_code in (401, 403), (method, path, api.status_code)


def test_healthz_and_the_login_page_are_open(client: AdminClient) -> None:
    assert client.get("/healthz").json()["admin"] is True
    page = client.get("/admin/login")
    assert page.status_code == 200 and "Sign in" in page.text


def test_sign_in_lands_on_the_overview_and_sign_out_ends_the_session(client: AdminClient) -> None:
    client.login("alice")
    assert "Overview" in client.get("/admin/").text
    assert client.form("/admin/logout", {}).status_code == 303
    assert client.get("/admin/", follow_redirects=False).status_code == 303


def test_wrong_passwords_are_refused_and_then_rate_limited(client: AdminClient) -> None:
    token = csrf_from(client.get("/admin/login").text)
    for _ in range(5):
        response = client.post("/admin/login", data={"name": "alice", "password": "nope", "csrf_token": token})
        assert response.status_code == 401 and "Wrong name or password" in response.text
    blocked = client.post("/admin/login", data={"name": "alice", "password": PASSWORD, "csrf_token": token})
    assert blocked.status_code == 429 and "Too many failed sign-ins" in blocked.text


def test_a_form_posted_without_its_csrf_token_is_refused(client: AdminClient) -> None:
    client.login("alice")
    assert client.post("/admin/logout", follow_redirects=False).status_code == 403
    assert client.post("/admin/logout", data={"csrf_token": "forged"}, follow_redirects=False).status_code == 403
    assert client.get("/admin/", follow_redirects=False).status_code == 200  # still signed in
    # the login form is protected too (login CSRF)
    client.cookies.clear()
    response = client.post("/admin/login", data={"name": "alice", "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 403


def test_roles_decide_the_pages(as_user) -> None:
    reviewer, team_admin, admin = as_user("rita"), as_user("sam"), as_user("alice")
    assert reviewer.get("/admin/presets").status_code == 403
    assert reviewer.get("/admin/rankings").status_code == 200
    assert team_admin.get("/admin/rankings").status_code == 403
    assert team_admin.get("/admin/presets").status_code == 200
    assert team_admin.get("/admin/users").status_code == 200  # their own team's people, read-only (test_people)
    assert admin.get("/admin/users").status_code == 200


def test_after_login_redirect_stays_inside_the_app(client: AdminClient) -> None:
    page = client.get("/admin/login")
    for target, expected in (("/admin/rankings", "/admin/rankings"), ("https://evil.example/", "/admin/")):
        response = client.post(
            "/admin/login",
            data={"name": "alice", "password": PASSWORD, "next": target, "csrf_token": csrf_from(page.text)},
            follow_redirects=False,
        )
        assert response.headers["location"] == expected
        page = client.get("/admin/login")


def test_production_refuses_to_start_without_a_secret_key(sessions) -> None:
    from admin import create_admin_app
    from admin.app import AdminConfigError

    with pytest.raises(AdminConfigError, match="ADMIN_SECRET_KEY"):
        create_admin_app(sessions, lambda: None, secret_key=None, production=True)


def test_create_user_cli_reads_the_password_from_the_environment(tmp_path: Path, monkeypatch, capsys) -> None:
    from tests.e2e.test_cli import run_cli

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'users.db'}")
    monkeypatch.setenv("RAGBOT_ADMIN_PASSWORD", "a long enough password")
    # A team admin's team must be a known team (a fresh database has the default one only).
    code, _, err = run_cli(capsys, "admin", "create-user", "nina", "--role", "team_admin", "--team", "support")
    assert code == 1 and "support" in err and "default" in err
    code, out, _ = run_cli(capsys, "admin", "create-user", "nina", "--role", "team_admin", "--team", "default")
    assert code == 0 and "Created team_admin 'nina' of team 'default'" in out
    code, _, err = run_cli(capsys, "admin", "create-user", "nina", "--role", "reviewer")
    assert code == 1 and "already exists" in err
    code, _, err = run_cli(capsys, "admin", "create-user", "omar", "--role", "team_admin")
    assert code == 1 and "needs --team" in err
    monkeypatch.setenv("RAGBOT_ADMIN_PASSWORD", "short")
    code, _, err = run_cli(capsys, "admin", "create-user", "omar", "--role", "reviewer")
    assert code == 1 and "too short" in err


def test_an_error_page_keeps_the_menu_for_a_signed_in_user(as_user) -> None:
    """A 403 or 404 page used to be a dead end without navigation."""
    rita = as_user("rita")
    for url, status in (("/admin/presets", 403), ("/admin/rankings/999999", 404)):
        page = rita.get(url, headers={"accept": "text/html"})
        assert page.status_code == status
        assert 'class="top"' in page.text and "Rankings</a>" in page.text and "Sign out" in page.text, url
