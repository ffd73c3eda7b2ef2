"""People and teams in headless Chromium: an admin invites someone and gives them a role, a team admin can
neither raise their own role nor see another team's people, and a switched-off person's open session is refused
at its next request."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

import store
from tests.browser.conftest import sign_in

NEW_PASSWORD = "a brand new password"


def user(server: Any, name: str) -> store.User | None:
    with server.components.sessions() as session:
        return session.scalar(select(store.User).where(store.User.name == name))


def post_form(page: Any, url: str, fields: dict[str, str]) -> int:
    """POST `fields` with the page's CSRF token, as a crafted request from a signed-in browser would."""
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    return page.evaluate(
        """async ([url, fields]) => (await fetch(url, {method: "POST", body: new URLSearchParams(fields),
                                                       redirect: "manual"})).status""",
        [url, {**fields, "csrf_token": token}],
    )


def test_an_admin_invites_a_person_and_gives_a_role(page, server, browser) -> None:
    sign_in(page, "alice")
    page.click("nav a:has-text('Users')")
    page.fill("#invite input[name=name]", "nora")
    page.select_option("#invite select[name=role]", "reviewer")
    page.fill("#invite input[name=password]", NEW_PASSWORD)
    page.click("#invite button:has-text('Invite')")
    page.wait_for_selector("h1:has-text('nora')")
    assert "reviewer" in page.locator("#person").inner_text()

    page.select_option("#role select[name=role]", "team_admin")
    page.select_option("#role select[name=team]", "sales")
    page.click("#role button:has-text('Save')")
    page.wait_for_selector("#person dd:has-text('team_admin')")
    nora = user(server, "nora")
    assert (nora.role, nora.team) == ("team_admin", "sales")

    # She signs in with the password the admin set and gets a team admin's pages.
    context = browser.new_context(base_url=server.url)
    try:
        hers = context.new_page()
        sign_in(hers, "nora", NEW_PASSWORD)
        assert hers.locator("nav a:has-text('Presets')").count() == 1
        assert hers.locator("nav a:has-text('Rankings')").count() == 0
    finally:
        context.close()


def test_a_team_admin_cannot_raise_their_own_role_or_see_another_team(page, server) -> None:
    sign_in(page, "sam")  # team_admin of "sales"
    page.click("nav a:has-text('People')")
    people = page.locator("#people").inner_text()
    assert "sam" in people and "lee" not in people and "alice" not in people
    assert page.locator("#people select").count() == 0 and page.locator("#invite").count() == 0

    lee, sam = user(server, "lee"), user(server, "sam")
    assert page.goto(f"/admin/users/{lee.id}").status == 403
    page.goto(f"/admin/users/{sam.id}")
    assert page.locator("form#role").count() == 0  # nothing to change, and the route refuses a crafted request
    assert post_form(page, f"/admin/users/{sam.id}/role", {"role": "admin", "team": "sales"}) == 403
    assert post_form(page, f"/admin/users/{lee.id}/deactivate", {}) == 403
    assert (user(server, "sam").role, user(server, "lee").active) == ("team_admin", True)


def test_a_switched_off_persons_open_session_is_refused_at_its_next_request(page, server, browser) -> None:
    sign_in(page, "rita")
    page.goto("/admin/rankings")
    assert page.locator("h1").first.inner_text() == "Rankings"

    context = browser.new_context(base_url=server.url)
    try:
        admin = context.new_page()
        sign_in(admin, "alice")
        admin.goto(f"/admin/users/{user(server, 'rita').id}")
        admin.click("#deactivate button:has-text('Switch off')")
        admin.wait_for_selector("#activate")
    finally:
        context.close()

    page.goto("/admin/rankings")
    page.wait_for_url("**/admin/login**")
    assert not user(server, "rita").active
