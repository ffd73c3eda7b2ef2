"""What Slack's AI surfaces add to a ranking (issue 14): a follow-up's message as asked next to the question that
was searched, and the "Still need help?" escalations, on the ranking page; escalated rankings marked and filtered
in the list."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import store
from tests.admin.test_rankings import T0, questions, seed


def test_the_detail_shows_asked_and_searched_and_the_escalations(sessions, as_user) -> None:
    with sessions.begin() as session:
        follow_up = seed(session, "How do I renew the Pro plan's SSO certificate?")
        session.get(store.RankingLog, follow_up).asked = "and how do I renew <it>?"
        store.add_escalation(session, follow_up, "U777", "usergroup", "S0123ABCD")
        store.add_escalation(session, follow_up, None, "channel", "C0SUPPORT1")
        plain = seed(session, "What does Pro cost?")
    rita = as_user("rita")

    page = rita.get(f"/admin/rankings/{follow_up}")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "<h1>and how do I renew <it>?</h1>" in text and "<it>" not in page.text  # escaped
    asked = re.search(r'id="asked">(.*?)</dl>', text, re.S).group(1)
    assert re.findall(r"<dd>(.*?)</dd>", asked) == [
        "and how do I renew <it>?",
        "How do I renew the Pro plan's SSO certificate?",
    ]
    escalations = re.search(r'id="escalations">(.*?)</section>', text, re.S).group(1)
    rows = [re.sub(r"<[^>]+>", " ", row).split() for row in re.findall(r"<tr><td>.*?</tr>", escalations, re.S)]
    assert [row[2:] for row in rows] == [["U777", "user", "group", "S0123ABCD"], ["someone", "channel", "C0SUPPORT1"]]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", row[0]) for row in rows)

    page = rita.get(f"/admin/rankings/{plain}").text
    assert 'id="asked"' not in page and "Nobody asked for a person" in page


def test_escalated_rankings_are_marked_and_filtered(sessions, as_user) -> None:
    with sessions.begin() as session:
        first = seed(session, "Q1", when=T0)
        seed(session, "Q2", when=T0 + timedelta(days=1))
        third = seed(session, "Q3", when=T0 + timedelta(days=2))
        for ranking_id in (first, third, third):
            store.add_escalation(session, ranking_id, "U1", "channel", "C0SUPPORT1")
    rita = as_user("rita")
    page = rita.get("/admin/rankings").text
    assert questions(page) == ["Q3", "Q2", "Q1"]
    assert page.count(">escalated</span>") == 2 and "2 “Still need help?” presses" in page
    assert questions(rita.get("/admin/rankings?escalated=yes").text) == ["Q3", "Q1"]
    assert questions(rita.get("/admin/rankings?escalated=no").text) == ["Q2"]
    refused = rita.get("/admin/rankings?escalated=maybe")
    assert refused.status_code == 400 and "escalated must be one of yes, no" in refused.text
    export = rita.get("/admin/rankings/export.csv?escalated=no").text
    assert ",Q2," in export and ",Q1," not in export
