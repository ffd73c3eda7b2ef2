"""Headless Chromium (Debian's, driven by Playwright) against the admin app served by uvicorn on 127.0.0.1,
over the real pipeline on the sample knowledge base."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from tests.admin.conftest import PASSWORD, USERS

CHROMIUM = os.environ.get("RAGBOT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("RAGBOT_ARTIFACTS", Path(__file__).resolve().parents[2] / "artifacts"))


def _chromium_or_fail() -> str:
    if CHROMIUM:
        return CHROMIUM
    message = "Chromium is not installed (apt-get install chromium); the browser tests need it"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


class LiveServer:
    def __init__(self, app: Any) -> None:
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.time() + 30
        while not self._server.started:
            assert time.time() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self._server.servers[0].sockets[0].getsockname()[1]}"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@pytest.fixture
def server(components) -> Iterator[LiveServer]:
    from admin import create_admin_app
    from admin.users import create_user
    from bot.app.web import create_http_app

    with components.sessions.begin() as session:
        for name, (role, team) in USERS.items():
            create_user(session, name, PASSWORD, role, team)
    app = create_http_app(None, create_admin_app(components.sessions, lambda: components.answers, secret_key="k"))
    live = LiveServer(app)
    live.components = components  # type: ignore[attr-defined]
    yield live
    live.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    executable = _chromium_or_fail()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=executable,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server: LiveServer) -> Iterator[Any]:
    """A fresh browser context; any request that leaves 127.0.0.1 fails the test (no CDN, no external asset)."""
    context = browser.new_context(base_url=server.url, accept_downloads=True)
    external: list[str] = []

    def guard(route: Any) -> None:
        url = route.request.url
        if url.startswith(server.url) or url.startswith("data:"):
            route.continue_()
        else:
            external.append(url)
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not external, f"pages requested external resources: {external}"
    assert not errors, f"JavaScript errors: {errors}"


def sign_in(page: Any, name: str, password: str = PASSWORD) -> None:
    page.goto("/admin/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button:has-text('Sign in')")
    page.wait_for_url("**/admin/")
