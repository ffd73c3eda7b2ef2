"""A preset's owner team is shown wherever the admin shows or uses the preset: the preset list and page (with its
channel bindings), the rankings list and detail (the ranking's preset) and the playground's preset picker."""

from __future__ import annotations

import re

from tests.admin.test_presets import create
from tests.admin.test_rankings import seed

TEAM = "team: legal"


def test_the_owner_team_is_shown_wherever_the_preset_is(as_user, sessions) -> None:
    alice = as_user("alice")
    preset_id = create(alice, name="legal-faq", team="legal")
    with sessions.begin() as s:
        ranking_id = seed(s, "Can we sign an NDA?", preset="legal-faq")

    listing = alice.get("/admin/presets").text
    row = re.search(r"<tr>\s*<td><a [^>]*>legal-faq</a></td>.*?</tr>", listing, re.S).group(0)
    assert f'<span class="tag team">{TEAM}</span>' in row

    page = alice.get(f"/admin/presets/{preset_id}").text
    assert re.search(rf"<h1>legal-faq <span class=\"tag team\">{TEAM}</span>", page)
    bindings = re.search(r'id="bindings".*?</h2>', page, re.S).group(0)
    assert TEAM in bindings

    rankings = alice.get("/admin/rankings").text
    assert re.search(rf"legal-faq v1 <span class=\"tag team\">{TEAM}</span>", rankings)
    detail = alice.get(f"/admin/rankings/{ranking_id}").text
    assert re.search(rf"<strong>legal-faq</strong> v1 <span class=\"tag team\">{TEAM}</span>", detail)

    playground = alice.get("/admin/playground").text
    assert re.search(rf'<option value="legal-faq"[^>]*>legal-faq · {TEAM}</option>', playground)
