"""The admin app under its Content-Security-Policy in headless Chromium: every page loads with no violation,
and the pages' own scripts (the candidate counter, the error page's Back) still run."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

import store
from tests.admin.test_rankings import seed
from tests.browser.conftest import sign_in


def _watch_csp(page: Any) -> list[str]:
    """Chromium reports each blocked script, style or frame on the console."""
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    return violations


def test_every_page_loads_under_the_csp(page, server) -> None:
    with server.components.sessions.begin() as session:
        ranking_id = seed(session, "How do I configure SAML with Okta?")
        preset_id = store.default_preset(session).id
        rita_id = session.scalar(select(store.User.id).where(store.User.name == "rita"))
        source = store.add_source(session, name="handbook", kind="folder", settings={"path": "/kb"}, collection="kb")
        sync = store.start_sync(session, source)
        store.finish_sync(
            session,
            sync,
            status="failed",
            added=1,
            changed=0,
            removed=0,
            unchanged=0,
            failed=1,
            errors={"guide.md": "cannot read"},
            error="listing failed",
        )
    violations = _watch_csp(page)
    sign_in(page, "alice")
    for path in (
        "/admin/",
        "/admin/?days=7",
        "/admin/presets",
        "/admin/presets/new",
        f"/admin/presets/{preset_id}",
        "/admin/rankings",
        f"/admin/rankings/{ranking_id}",
        "/admin/playground",
        "/admin/users",
        f"/admin/users/{rita_id}",
        "/admin/audit",
        "/admin/sources",
        "/admin/sources/handbook",
    ):
        response = page.goto(path)
        assert response.status == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"], path
    assert not violations, violations


def test_the_pages_scripts_still_run(page) -> None:
    violations = _watch_csp(page)
    sign_in(page, "rita")
    page.goto("/admin/playground?example=1")
    counter = page.locator("#candidates-count")
    counter.wait_for()
    assert counter.inner_text() == "8 / 100 candidates"  # written by playground.js
    page.fill("textarea[name=candidates]", "one\ntwo")
    assert counter.inner_text() == "2 / 100 candidates"

    page.goto("/admin/rankings")
    page.goto("/admin/rankings/999999")  # an error page
    assert page.locator("h1").inner_text() == "Sorry"
    page.click("a:has-text('Back')")  # admin.js: back to where the reader came from
    page.wait_for_url("**/admin/rankings")
    assert not violations, violations
