"""Single sign-on through a real OpenID Connect provider on 127.0.0.1 (fake_oidc.py): the browser's redirects
are followed by hand, the app's own requests (discovery, JWKS, token) go over HTTP to the provider."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc.jwk import RSAKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import store
from admin.oidc import FLOW_COOKIE, UNKNOWN_STATE, OidcConfig
from tests.admin.conftest import PASSWORD, AdminClient, csrf_from
from tests.admin.fake_oidc import CLIENT_ID, CLIENT_SECRET, FakeOidcServer
from tests.admin.test_auth_and_access import admin_routes

KEY = RSAKey.generate_key(2048, parameters={"kid": "provider-key"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "provider-key"})  # same kid, another key
SECRET_KEY = "a-test-secret-key-of-at-least-32-characters"


@pytest.fixture
def provider() -> Iterator[FakeOidcServer]:
    with FakeOidcServer(KEY) as server:
        yield server


@pytest.fixture
def make_client(sessions: sessionmaker[Session], provider: FakeOidcServer) -> Iterator[Callable[..., AdminClient]]:
    """An admin app with SSO through `provider` (settings as keyword arguments), and a browser on it."""
    from admin import create_admin_app
    from bot.app.web import create_http_app

    def missing() -> Any:
        raise AssertionError("the pipeline is not needed here")

    clients: list[AdminClient] = []

    def make(*, password_login: bool = True, issuer: str | None = None, **settings: str) -> AdminClient:
        config = OidcConfig.from_settings(issuer or provider.issuer, CLIENT_ID, CLIENT_SECRET, **settings)
        admin = create_admin_app(sessions, missing, secret_key=SECRET_KEY, oidc=config, password_login=password_login)
        client = AdminClient(create_http_app(None, admin), headers={"accept": "text/html"})
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def authorize(client: AdminClient, provider: FakeOidcServer, next: str = "") -> tuple[str, dict[str, str]]:
    """Start a sign-in and let the provider sign the user in: the callback URL (path and query) it redirects to,
    and the authorization request's parameters."""
    start = client.get("/admin/login/oidc", params={"next": next} if next else None, follow_redirects=False)
    assert start.status_code == 303, start.text
    location = start.headers["location"]
    assert location.startswith(f"{provider.issuer}/authorize?")
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    at_provider = httpx.get(location, follow_redirects=False)  # the browser at the provider
    assert at_provider.status_code == 302, at_provider.text
    back = urlsplit(at_provider.headers["location"])
    assert back.path == "/admin/auth/oidc/callback"
    return f"{back.path}?{back.query}", params


def sign_in(client: AdminClient, provider: FakeOidcServer, next: str = ""):
    callback, _ = authorize(client, provider, next)
    return client.get(callback, follow_redirects=False)


def sign_out(client: AdminClient) -> None:
    assert client.post("/admin/logout", data={"csrf_token": csrf_from(client.get("/admin/").text)}).status_code == 200
    assert client.get("/admin/", follow_redirects=False).status_code == 303


def users(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(store.User))


def assert_refused(response, message: str, client: AdminClient, sessions: sessionmaker[Session], count: int) -> None:
    """Refused with the reason on the sign-in page, no session, no user created."""
    assert response.status_code in (401, 403, 502), response.text
    assert message in response.text
    assert "Traceback" not in response.text
    assert client.get("/admin/", follow_redirects=False).status_code == 303  # to the sign-in page
    assert users(sessions) == count
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(store.AdminSession)) == 0


def test_first_sign_in_creates_a_user_with_no_rights(make_client, provider, sessions) -> None:
    client = make_client(provider_name="Acme SSO")
    page = client.get("/admin/login")
    assert "Sign in with Acme SSO" in page.text and 'name="password"' in page.text
    before = users(sessions)

    callback, params = authorize(client, provider, next="/admin/presets")
    assert (params["code_challenge_method"], params["client_id"]) == ("S256", CLIENT_ID)
    assert params["redirect_uri"] == "http://testserver/admin/auth/oidc/callback"
    assert params["nonce"] and params["state"] and "openid" in params["scope"]
    done = client.get(callback, follow_redirects=False)
    assert done.status_code == 200, done.text
    assert 'http-equiv="refresh" content="0;url=/admin/presets"' in done.text
    # The verifier went to the token endpoint and matched the challenge (the provider checked it).
    assert len(provider.provider.token_requests[-1]["code_verifier"]) >= 43

    with sessions() as session:
        user = session.scalar(select(store.User).where(store.User.oidc_subject == "u-1"))
        assert (user.name, user.email, user.role, user.password_hash) == (
            "ann@example.com",
            "ann@example.com",
            "none",
            None,
        )
        assert user.oidc_issuer == provider.issuer
    assert users(sessions) == before + 1
    # Signed in, but no role: the "ask an admin" page instead of any page of the app.
    for path in ("/admin/", "/admin/presets", "/admin/playground"):
        page = client.get(path, follow_redirects=False)
        assert page.status_code == 403 and "Ask an admin for access" in page.text, path
        assert "Presets</a>" not in page.text
    # A second sign-in finds the same user by issuer and subject.
    assert sign_in(client, provider).status_code == 200
    assert users(sessions) == before + 1
    sign_out(client)
    assert client.get("/admin/", follow_redirects=False).status_code == 303


def test_default_role_and_group_mapping(make_client, provider, sessions) -> None:
    client = make_client(default_role="reviewer")
    landed = sign_in(client, provider, next="/\\evil.example/")  # browsers read /\ as //: not a path of ours
    assert landed.status_code == 200 and 'content="0;url=/admin/"' in landed.text
    assert client.get("/admin/rankings").status_code == 200
    assert client.get("/admin/presets").status_code == 403  # a reviewer, not an admin

    provider.provider.user = {"sub": "u-2", "email": "bob@example.com", "groups": ["staff", "support-leads"]}
    mapped = make_client(role_claim="groups", role_map="ragbot-admins=admin,support-leads=team_admin:support")
    assert sign_in(mapped, provider).status_code == 200
    with sessions() as session:
        bob = session.scalar(select(store.User).where(store.User.oidc_subject == "u-2"))
        assert (bob.role, bob.team) == ("team_admin", "support")


def test_a_local_name_is_never_taken_over(make_client, provider, sessions) -> None:
    """An SSO user whose email is an existing user's name gets a name of their own, not that account."""
    provider.provider.user = {"sub": "u-9", "preferred_username": "alice"}
    client = make_client(default_role="admin")
    assert sign_in(client, provider).status_code == 200
    with sessions() as session:
        names = {u.name: u.oidc_subject for u in session.scalars(select(store.User))}
    assert names["alice"] is None and names["alice-2"] == "u-9"


@pytest.mark.parametrize(
    ("knob", "message"),
    [
        ({"audience": "another-app"}, "issued for another application"),
        ({"sign_with": OTHER_KEY}, "signature does not match"),
        ({"lifetime_s": -600}, "The ID token has expired"),
    ],
    ids=["wrong-audience", "bad-signature", "expired"],
)
def test_a_bad_id_token_is_refused(make_client, provider, sessions, knob: dict[str, Any], message: str) -> None:
    client = make_client()
    count = users(sessions)
    for name, value in knob.items():
        setattr(provider.provider, name, value)
    assert_refused(sign_in(client, provider), message, client, sessions, count)


def test_a_replayed_or_unknown_state_is_refused(make_client, provider, sessions) -> None:
    client = make_client()
    callback, _ = authorize(client, provider)
    flow_cookie = client.cookies.get(FLOW_COOKIE)
    assert client.get(callback, follow_redirects=False).status_code == 200
    count = users(sessions)
    sign_out(client)

    # The same callback again: its cookie was spent.
    assert_refused(client.get(callback, follow_redirects=False), UNKNOWN_STATE, client, sessions, count)
    # Replayed with a copy of the spent cookie: the code was used, and the provider says so.
    client.cookies.set(FLOW_COOKIE, flow_cookie, path="/admin/auth/oidc/callback")
    assert_refused(client.get(callback, follow_redirects=False), "unknown or used code", client, sessions, count)
    # A state this browser never started (a forged link).
    other = make_client()
    query = parse_qs(urlsplit(callback).query)
    forged = other.get("/admin/auth/oidc/callback", params={"code": query["code"][0], "state": "made-up"})
    assert_refused(forged, UNKNOWN_STATE, other, sessions, count)


def test_a_code_injected_into_another_sign_in_fails_pkce(make_client, provider, sessions) -> None:
    """Someone else's code, delivered with this browser's own state: the provider checks the verifier against
    the challenge the code was issued for, and refuses."""
    victim, attacker = make_client(), make_client()
    count = users(sessions)
    victim_callback, _ = authorize(victim, provider)
    stolen_code = parse_qs(urlsplit(victim_callback).query)["code"][0]
    attacker_callback, _ = authorize(attacker, provider)
    own_state = parse_qs(urlsplit(attacker_callback).query)["state"][0]
    response = attacker.get("/admin/auth/oidc/callback", params={"code": stolen_code, "state": own_state})
    assert_refused(response, "PKCE verification failed", attacker, sessions, count)


def test_domain_not_allowed_and_unverified_email(make_client, provider, sessions) -> None:
    client = make_client(allowed_domains="corp.example, Other.example")
    count = users(sessions)
    assert_refused(sign_in(client, provider), "limited to @corp.example, @other.example", client, sessions, count)
    provider.provider.user = {"sub": "u-3", "email": "cy@corp.example", "email_verified": False}
    assert_refused(sign_in(client, provider), "has not verified the email", client, sessions, count)
    provider.provider.user = {"sub": "u-3", "email": "cy@CORP.example", "email_verified": True}
    assert sign_in(client, provider).status_code == 200


def test_a_switched_off_user_cannot_sign_in(make_client, provider, sessions) -> None:
    client = make_client(default_role="admin")
    assert sign_in(client, provider).status_code == 200
    with sessions.begin() as session:
        user = session.scalar(select(store.User).where(store.User.oidc_subject == "u-1"))
        user.active = False
        store.end_user_sessions(session, user.id)
    count = users(sessions)
    assert_refused(sign_in(client, provider), "This account is switched off", client, sessions, count)


def test_provider_unreachable_at_discovery(make_client, sessions) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = make_client(issuer=f"http://127.0.0.1:{port}")
    response = client.get("/admin/login/oidc", follow_redirects=False)
    assert response.status_code == 502
    assert f"Cannot reach the identity provider at http://127.0.0.1:{port}/.well-known/openid-configuration" in (
        response.text
    )


def test_password_login_off(make_client, provider, sessions) -> None:
    client = make_client(password_login=False)
    page = client.get("/admin/login")
    assert 'name="password"' not in page.text and "Sign in with 127.0.0.1:" in page.text
    # Signed in through SSO (no role), the page's form gives a CSRF token: the refusal is the setting's, not CSRF's.
    assert sign_in(client, provider).status_code == 200
    csrf = csrf_from(client.get("/admin/").text)
    refused = client.post(
        "/admin/login", data={"name": "alice", "password": PASSWORD, "csrf_token": csrf}, follow_redirects=False
    )
    assert refused.status_code == 403 and "Password sign-in is turned off" in refused.text
    with sessions() as session:
        alice = session.scalar(select(store.User).where(store.User.name == "alice"))
        assert session.scalar(select(func.count()).where(store.AdminSession.user_id == alice.id)) == 0
    assert "Ask an admin for access" in client.get("/admin/").text  # still the SSO user, not alice
    # With passwords on, the same user signs in as before, next to SSO.
    assert make_client().login("alice").get("/admin/users").status_code == 200


def test_settings_need_a_way_in_and_hide_the_secret(sessions) -> None:
    from admin import create_admin_app
    from admin.app import AdminConfigError
    from bot.settings import Settings

    with pytest.raises(AdminConfigError, match="no one could sign in"):
        create_admin_app(sessions, lambda: None, secret_key=SECRET_KEY, password_login=False)
    with pytest.raises(AdminConfigError, match="team_admin:TEAM"):
        OidcConfig.from_settings("https://id.example", CLIENT_ID, CLIENT_SECRET, default_role="team_admin")
    settings = Settings(_env_file=None, oidc_issuer="https://id.example", oidc_client_secret=CLIENT_SECRET)
    config = OidcConfig.from_settings("https://id.example", CLIENT_ID, CLIENT_SECRET)
    assert CLIENT_SECRET not in repr(settings) and CLIENT_SECRET not in repr(config)
    assert config.label == "id.example"


def test_an_admin_grants_a_role_to_a_new_sso_user(make_client, provider, sessions) -> None:
    person = make_client()
    assert sign_in(person, provider).status_code == 200
    assert person.get("/admin/rankings", follow_redirects=False).status_code == 403
    with sessions() as session:
        ann = session.scalar(select(store.User).where(store.User.oidc_subject == "u-1")).id

    rita = make_client().login("rita")  # a reviewer grants nothing
    assert rita.form(f"/admin/users/{ann}/role", {"role": "admin"}).status_code == 403
    alice = make_client().login("alice")
    assert "single sign-on (ann@example.com)" in alice.get("/admin/users").text
    no_team = alice.form(f"/admin/users/{ann}/role", {"role": "team_admin", "team": ""})
    assert no_team.status_code == 400 and "needs a team" in no_team.text
    assert alice.form(f"/admin/users/{ann}/role", {"role": "reviewer"}).status_code == 303

    assert person.get("/admin/rankings").status_code == 200  # the same session, now with a role
    with sessions() as session:
        about_ann = store.AuditEntry.target == "user ann@example.com"
        entries = session.scalars(select(store.AuditEntry).where(about_ann).order_by(store.AuditEntry.id)).all()
        assert [(e.actor, e.action) for e in entries] == [("sso", "user.create"), ("alice", "user.role")]


def test_only_the_sign_in_routes_are_open(make_client) -> None:
    """With single sign-on on, its two routes join the sign-in page as the only ones open without a session."""
    client = make_client()
    open_routes = {
        ("GET", "/admin/login"),
        ("POST", "/admin/login"),
        ("GET", "/admin/login/oidc"),
        ("GET", "/admin/auth/oidc/callback"),
    }
    routes = set(admin_routes(client.app))
    assert open_routes <= routes and len(routes) > 10
    for method, path in sorted(routes - open_routes):
        response = client.request(method, path, follow_redirects=False)
        assert response.status_code in (303, 401, 403), (method, path, response.status_code)


def test_the_settings_reach_the_admin_app(provider, sessions) -> None:
    """`ragbot serve`'s wiring (bot.app.web.build_admin) from the OIDC_* and ADMIN_PASSWORD_LOGIN settings."""
    from types import SimpleNamespace

    from bot.app.web import build_admin, create_http_app
    from bot.settings import Settings

    settings = Settings(
        _env_file=None,
        admin_secret_key=SECRET_KEY,
        admin_password_login=False,
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        oidc_provider_name="Corp ID",
        oidc_allowed_domains="example.com",
        oidc_default_role="reviewer",
    )
    admin = build_admin(SimpleNamespace(settings=settings, sessions=sessions, answers=None))
    with AdminClient(create_http_app(None, admin), headers={"accept": "text/html"}) as client:
        page = client.get("/admin/login")
        assert "Sign in with Corp ID" in page.text and 'name="password"' not in page.text
        assert sign_in(client, provider).status_code == 200
        assert client.get("/admin/rankings").status_code == 200  # OIDC_DEFAULT_ROLE=reviewer


def test_an_invited_person_is_matched_by_verified_email_at_first_sign_in(make_client, provider, sessions) -> None:
    alice = make_client().login("alice")
    invite = {"name": "ann", "email": "Ann@Example.com", "role": "reviewer", "team": "sales", "password": ""}
    assert alice.form("/admin/users", invite).status_code == 303
    before = users(sessions)

    # An unverified email takes no invited account: the provider's word on the address is what links it.
    provider.provider.user = {"sub": "u-9", "email": "ann@example.com"}
    stranger = make_client()
    assert sign_in(stranger, provider).status_code == 200
    with sessions() as session:
        ann = session.scalar(select(store.User).where(store.User.name == "ann"))
        assert ann.oidc_subject is None
    assert users(sessions) == before + 1  # a new, rightless user instead

    provider.provider.user = {"sub": "u-1", "email": "ann@example.com", "email_verified": True}
    person = make_client()
    assert sign_in(person, provider).status_code == 200
    assert person.get("/admin/rankings").status_code == 200  # the invited role, at once
    with sessions() as session:
        ann = session.scalar(select(store.User).where(store.User.name == "ann"))
        assert (ann.oidc_issuer, ann.oidc_subject, ann.role, ann.team) == (provider.issuer, "u-1", "reviewer", "sales")
        entries = session.scalars(select(store.AuditEntry).where(store.AuditEntry.target == "user ann")).all()
        assert [(e.actor, e.action) for e in entries] == [("alice", "user.create"), ("sso", "user.sso_link")]
    assert users(sessions) == before + 1

    # Another identity with the same email later is not linked to ann (she has an identity now).
    provider.provider.user = {"sub": "u-2", "email": "ann@example.com", "email_verified": True}
    other = make_client()
    assert sign_in(other, provider).status_code == 200
    assert other.get("/admin/rankings", follow_redirects=False).status_code == 403
    with sessions() as session:
        assert session.scalar(select(store.User.oidc_subject).where(store.User.name == "ann")) == "u-1"
