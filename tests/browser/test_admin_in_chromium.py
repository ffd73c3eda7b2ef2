"""The admin app in headless Chromium, as reviewers and team admins use it."""

from __future__ import annotations

from tests.browser.conftest import sign_in


def test_sign_in_and_out(page) -> None:
    sign_in(page, "alice")
    assert page.locator("h1").first.inner_text() == "Overview"
    page.click("button:has-text('Sign out')")
    page.wait_for_url("**/admin/login")
    page.goto("/admin/rankings")
    page.wait_for_url("**/admin/login?next=%2Fadmin%2Frankings")
