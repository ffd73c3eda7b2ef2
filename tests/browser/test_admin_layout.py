"""The admin pages on a phone (390 x 844, issue 17): nothing scrolls sideways, the top bar's links are readable and
reachable, wide tables scroll inside their own box, and the playground's answer is in view after 'Ask'."""

from __future__ import annotations

from typing import Any

import pytest

import store
from tests.browser.conftest import ARTIFACTS, sign_in

PHONE = {"width": 390, "height": 844}

# Reads the page's layout in one call: the document's overflow, the top bar's links with their colours and boxes.
_LAYOUT = """() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).slice(0, 3).map(Number);
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = getComputedStyle(el).backgroundColor;
      if (c && !c.startsWith("rgba(0, 0, 0, 0)") && c !== "transparent") return rgb(c);
    }
    return [255, 255, 255];
  };
  const luminance = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const contrast = (a, b) => {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  const links = [...document.querySelectorAll("header.top a, header.top button")].map((el) => {
    const box = el.getBoundingClientRect();
    return {text: el.textContent.trim(), contrast: contrast(rgb(getComputedStyle(el).color), background(el)),
            left: box.left, right: box.right, top: box.top, width: box.width, height: box.height,
            visibility: getComputedStyle(el).visibility};
  });
  const el = document.documentElement;
  return {scrollWidth: el.scrollWidth, clientWidth: el.clientWidth, bodyScroll: document.body.scrollWidth, links};
}"""

# After scrolling a link's own scrollable ancestor to it: is the link then inside the viewport?
_REACHABLE = """(el) => {
  el.scrollIntoView({block: "nearest", inline: "nearest"});
  const box = el.getBoundingClientRect();
  return box.left >= 0 && box.right <= window.innerWidth + 0.5 && box.top >= 0 && box.width > 0;
}"""


def _phone_problems(page: Any, path: str, *, top_bar: bool = True) -> list[str]:
    """What is wrong with `path` on a phone: sideways scrolling, top-bar links unreadable or out of reach."""
    page.goto(path)
    page.wait_for_load_state()
    layout = page.evaluate(_LAYOUT)
    problems = []
    if layout["scrollWidth"] > layout["clientWidth"]:
        problems.append(f"{path} scrolls sideways: {layout['scrollWidth']} px wide")
    if not top_bar:
        return problems
    links = layout["links"]
    if not {"Overview", "Playground", "Sign out"} <= {link["text"] for link in links}:
        problems.append(f"{path}: the top bar lacks links: {[link['text'] for link in links]}")
    for link in links:
        if link["visibility"] != "visible" or link["width"] <= 0 or link["height"] <= 0:
            problems.append(f"{path}: '{link['text']}' is not shown")
        if link["contrast"] < 4.5:
            problems.append(f"{path}: '{link['text']}' reads at contrast {link['contrast']:.2f}")
    for locator in page.locator("header.top a, header.top button").all():
        if not locator.evaluate(_REACHABLE):
            problems.append(f"{path}: '{locator.inner_text()}' cannot be brought into view")
    return problems


@pytest.fixture
def phone(page: Any) -> Any:
    page.set_viewport_size(PHONE)
    return page


def test_no_admin_page_scrolls_sideways_on_a_phone(phone, server) -> None:
    result = server.components.answers.ask("How do I configure SAML with Okta?", channel="C0SUPPORT1", user="U1")
    with server.components.sessions.begin() as session:
        preset_id = store.default_preset(session).id
        # What Slack's AI surfaces add (issue 14), long enough to test the wrapping: a follow-up as asked, an
        # escalation, a refusal on the overview.
        session.get(store.RankingLog, result.ranking_id).asked = "and " + "with-okta-" * 30 + "?"
        store.add_escalation(session, result.ranking_id, "U1", "channel", "C0SUPPORT1")
        store.record_refusal(
            session, "external", channel="C0SHARED1", user="U2", user_team="T0OTHER", question="SAML? " * 60
        )
    problems = _phone_problems(phone, "/admin/login", top_bar=False)
    sign_in(phone, "alice")
    for path in (
        "/admin/",
        "/admin/presets",
        "/admin/presets/new",
        f"/admin/presets/{preset_id}",
        f"/admin/presets/{preset_id}/versions/1",
        "/admin/rankings",
        f"/admin/rankings/{result.ranking_id}",
        "/admin/playground",
        "/admin/playground?example=1",
        "/admin/users",
        "/admin/audit",
        "/admin/rankings/999999999",  # the error page
    ):
        problems += _phone_problems(phone, path)
    assert "Sorry" in phone.inner_text("main")  # the last one was the error page indeed
    assert not problems, "\n".join(problems)

    # A wide table scrolls inside its own box instead of widening the page.
    phone.goto(f"/admin/rankings/{result.ranking_id}")
    widest = phone.evaluate(
        """() => [...document.querySelectorAll("main table")].map((t) => {
             let box = t;  // the table itself on a phone, or a .table-scroll box around it
             while (box && getComputedStyle(box).overflowX === "visible") box = box.parentElement;
             return {table: t.scrollWidth, box: box ? box.clientWidth : 0,
                     overflow: box ? getComputedStyle(box).overflowX : "none"};
           }).sort((a, b) => b.table - a.table)[0]"""
    )
    assert widest["table"] > PHONE["width"], widest  # the candidates table is wider than a phone...
    assert widest["overflow"] in ("auto", "scroll") and widest["box"] < PHONE["width"], widest  # ...and scrolls
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(ARTIFACTS / "ranking-detail-390.png"), full_page=True)


_ANSWER_IN_VIEW = """() => { const box = document.getElementById("answer").getBoundingClientRect();
                             return box.top >= -1 && box.top < window.innerHeight * 0.6; }"""


def _ask(page: Any, question: str) -> None:
    page.fill("input[name=question]", question)
    page.click("button:has-text('Ask')")
    page.wait_for_selector("#answer")
    page.wait_for_function(_ANSWER_IN_VIEW, timeout=5000)  # the page reloads at the top; the answer is far below


def test_the_playground_answer_is_in_view_after_ask(phone) -> None:
    sign_in(phone, "rita")
    phone.goto("/admin/playground")
    assert phone.evaluate("() => window.scrollY") == 0
    _ask(phone, "How do I configure SAML with Okta?")
    assert phone.locator("#answer").is_visible()
    assert phone.evaluate("() => document.activeElement.id") == "answer"  # screen readers read the answer next
    layout = phone.evaluate(_LAYOUT)
    assert layout["scrollWidth"] <= layout["clientWidth"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(ARTIFACTS / "playground-answer-390.png"))

    phone.set_viewport_size({"width": 1280, "height": 800})  # a desktop: the rank form above pushes it down too
    phone.goto("/admin/playground")
    _ask(phone, "Can we integrate single sign-on?")
    assert phone.evaluate("() => window.scrollY") > 0
