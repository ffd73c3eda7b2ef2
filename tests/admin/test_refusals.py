"""Slack refusals on the overview (issue 14): admins see how many questions were declined in the last 30 days
and the latest 20 (when, why, where, who, from which organisation, what); nobody else sees them."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import store
from store.models import utcnow


def test_admins_see_the_recent_refusals_and_others_do_not(sessions, as_user) -> None:
    now = utcnow()
    with sessions.begin() as session:
        old = store.record_refusal(session, "external", channel="C0SHARED1", user="UOLD", question="old one")
        old.created_at = now - timedelta(days=45)
        for n in range(22):
            refusal = store.record_refusal(
                session, "external", channel="C0SHARED1", user=f"U{n}", user_team="T0OTHER", question=f"<q{n}>"
            )
            refusal.created_at = now - timedelta(hours=n)
    page = as_user("alice").get("/admin/")
    assert page.status_code == 200
    section = re.search(r'id="refusals".*?</section>', page.text, re.S).group(0)
    assert "<strong>22</strong> questions declined in Slack in the last 30 days" in section
    rows = re.findall(r"<tr><td>.*?</tr>", section, re.S)
    assert len(rows) == 20
    cells = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td>(.*?)</td>", rows[0], re.S)]
    assert cells[1:] == ["external", "C0SHARED1", "U0", "T0OTHER", "<q0>"]  # newest first
    assert "<q0>" not in page.text  # escaped
    assert "UOLD" not in section and "U20" not in section

    for name in ("sam", "rita"):
        assert 'id="refusals"' not in as_user(name).get("/admin/").text


def test_no_refusals_says_so(as_user) -> None:
    page = as_user("alice").get("/admin/").text
    assert "<strong>0</strong> questions declined" in page and "No refusals logged." in page
