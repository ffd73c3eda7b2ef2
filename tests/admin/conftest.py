"""Admin app fixtures: a migrated SQLite database with one user per role, a signed-in TestClient helper."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

import store

PASSWORD = "correct horse battery"
USERS = {
    "alice": ("admin", None),
    "sam": ("team_admin", "sales"),
    "lee": ("team_admin", "legal"),
    "rita": ("reviewer", None),
}


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    yield from seeded_sessions(f"sqlite:///{tmp_path / 'admin.db'}")


def seeded_sessions(url: str) -> Iterator[sessionmaker[Session]]:
    """A migrated database at `url` holding USERS (each with PASSWORD), for as long as the caller iterates."""
    from admin.users import create_user

    engine = store.make_engine(url)
    store.upgrade_database(engine)
    factory = store.session_factory(engine)
    with factory.begin() as session:
        for name, (role, team) in USERS.items():
            create_user(session, name, PASSWORD, role, team)
    yield factory
    engine.dispose()


@pytest.fixture
def pipeline_provider() -> Callable[[], Any]:
    """Tests that need the real pipeline override this fixture; the others must not touch it."""

    def missing() -> Any:
        raise AssertionError("this test did not expect the pipeline to be used")

    return missing


@pytest.fixture
def admin_app(sessions: sessionmaker[Session], pipeline_provider: Callable[[], Any]):
    from admin import create_admin_app
    from bot.app.web import create_http_app

    return create_http_app(None, create_admin_app(sessions, pipeline_provider, secret_key="test-secret"))


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has a form with a CSRF token"
    return match.group(1)


class AdminClient(TestClient):
    """A TestClient that knows the app lives under /admin and can sign in."""

    csrf: str = ""

    def login(self, name: str, password: str = PASSWORD) -> AdminClient:
        page = self.get("/admin/login")
        response = self.post(
            "/admin/login",
            data={"name": name, "password": password, "csrf_token": csrf_from(page.text)},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
        self.csrf = csrf_from(self.get("/admin/").text)
        return self

    def form(self, url: str, data: dict[str, Any], **kwargs: Any):
        """POST a form with this session's CSRF token, as the page's own form would."""
        return self.post(url, data={**data, "csrf_token": self.csrf}, follow_redirects=False, **kwargs)


@pytest.fixture
def client(admin_app) -> Iterator[AdminClient]:
    with AdminClient(admin_app, headers={"accept": "text/html"}) as c:
        yield c


@contextmanager
def signed_in_clients(app: Any) -> Iterator[Callable[[str], AdminClient]]:
    """A sign-in function: each call opens a client signed in as that user; all close at the end."""
    with ExitStack() as stack:

        def sign_in(name: str) -> AdminClient:
            return stack.enter_context(AdminClient(app, headers={"accept": "text/html"})).login(name)

        yield sign_in


@pytest.fixture
def as_user(admin_app) -> Iterator[Callable[[str], AdminClient]]:
    with signed_in_clients(admin_app) as sign_in:
        yield sign_in


@pytest.fixture
def live(components) -> Iterator[Callable[[str], AdminClient]]:
    """The admin app over the real pipeline (sample knowledge base, tiny reranker) and its database, with the
    same users; returns a sign-in function like `as_user`."""
    from admin import create_admin_app
    from admin.users import create_user
    from bot.app.web import create_http_app

    with components.sessions.begin() as session:
        for name, (role, team) in USERS.items():
            create_user(session, name, PASSWORD, role, team)
    app = create_http_app(
        None, create_admin_app(components.sessions, lambda: components.answers, secret_key="test-secret")
    )
    with signed_in_clients(app) as sign_in:
        yield sign_in
