"""The admin app in headless Chromium, as team admins and reviewers use it (issue: admin app, "Done when")."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

import store
from tests.browser.conftest import ARTIFACTS, sign_in


def test_sign_in_and_out(page) -> None:
    sign_in(page, "alice")
    assert page.locator("h1").first.inner_text() == "Overview"
    page.click("button:has-text('Sign out')")
    page.wait_for_url("**/admin/login")
    page.goto("/admin/rankings")
    page.wait_for_url("**/admin/login?next=%2Fadmin%2Frankings")


def test_a_team_admin_creates_edits_and_binds_a_preset(page, server) -> None:
    sign_in(page, "sam")  # team_admin of "sales"
    page.goto("/admin/presets/new")
    page.fill("input[name=name]", "sales-sso")
    page.fill("textarea[name=instruction]", "Given a sales question, retrieve passages about plans and SSO")
    page.click("button:has-text('Create preset')")
    page.wait_for_selector("#versions")
    assert page.locator("#versions").inner_text().count("v1") >= 1

    page.fill("textarea[name=instruction]", "Given a sales question, retrieve passages about plans, SSO and SCIM")
    page.click("button:has-text('Save')")
    page.wait_for_selector("#versions :text('v2')")
    assert "v2" in page.locator("#versions").inner_text()

    page.fill("input[name=channel_id]", "C0SALES001")
    page.click("button:has-text('Bind channel')")
    page.wait_for_selector("text=C0SALES001")
    with server.components.sessions() as session:
        preset = store.preset_named(session, "sales-sso")
        assert (preset.team, preset.version) == ("sales", 2)
        assert store.preset_for(session, "C0SALES001").name == "sales-sso"

    # Validation: errors next to the field, nothing saved.
    page.fill("input[name=top_n]", "50")
    page.click("button:has-text('Save')")
    page.wait_for_selector(".field-error")
    with server.components.sessions() as session:
        assert store.preset_named(session, "sales-sso").version == 2


def test_a_team_admin_cannot_change_another_teams_preset(page, server) -> None:
    with server.components.sessions.begin() as session:
        session.add(store.Preset(team="legal", name="legal-contracts", instruction="Legal passages first"))
    sign_in(page, "sam")
    with server.components.sessions() as session:
        preset_id = store.preset_named(session, "legal-contracts").id
    page.goto(f"/admin/presets/{preset_id}")
    assert page.locator("button:has-text('Save')").count() == 0  # read-only for another team
    # A crafted request with a valid session and CSRF token is refused all the same.
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    status = page.evaluate(
        """async ([url, token]) => {
            const body = new URLSearchParams({csrf_token: token, instruction: "hijacked", candidates_k: "20",
                                              top_n: "3", min_score: "0", collection: "", base_version: "1"});
            return (await fetch(url, {method: "POST", body})).status;
        }""",
        [f"/admin/presets/{preset_id}", token],
    )
    assert status == 403
    with server.components.sessions() as session:
        assert store.preset_named(session, "legal-contracts").instruction == "Legal passages first"


def test_a_form_posted_without_its_csrf_token_is_refused(page) -> None:
    sign_in(page, "alice")
    status = page.evaluate(
        """async () => (await fetch("/admin/presets/new", {method: "POST",
              body: new URLSearchParams({name: "x", team: "t", instruction: "y", candidates_k: "20", top_n: "3",
                                         min_score: "0"})})).status"""
    )
    assert status == 403
    assert page.evaluate('async () => (await fetch("/admin/logout", {method: "POST"})).status') == 403


def test_the_playground_ranks_pasted_candidates(page) -> None:
    sign_in(page, "rita")
    page.goto("/admin/playground")
    page.click("text=Load example")
    page.wait_for_url("**example=1")
    page.click("button:has-text('Rank')")
    page.wait_for_selector("#ranked tr")
    rows = page.locator("#ranked tr")
    assert rows.count() >= 5
    scores = [float(s) for s in page.locator("#ranked tr").all_inner_texts() for s in s.split() if _is_score(s)]
    assert scores and all(0.0 <= s <= 1.0 for s in scores)
    page.fill("textarea[name=candidates]", "   \n   ")  # passes the browser's `required`, not the server
    page.click("button:has-text('Rank')")
    page.wait_for_selector(".field-error, .error")


def _is_score(token: str) -> bool:
    try:
        return "." in token and 0.0 <= float(token) <= 1.0 and len(token.split(".")[1]) == 3
    except ValueError:
        return False


def test_a_reviewer_labels_a_candidate_and_downloads_the_csv(page, server) -> None:
    result = server.components.answers.ask("How do I configure SAML with Okta?", channel="C0SUPPORT1", user="U1")
    sign_in(page, "rita")
    page.goto("/admin/rankings")
    page.click(f"a[href$='/rankings/{result.ranking_id}']")
    page.wait_for_url(f"**/rankings/{result.ranking_id}")
    assert "How do I configure SAML with Okta?" in page.content()
    page.locator("button:has-text('Relevant')").first.click()
    page.wait_for_load_state()
    with server.components.sessions() as session:
        [label] = session.scalars(select(store.CandidateLabel)).all()
        assert (label.ranking_id, label.reviewer, label.relevant) == (result.ranking_id, "rita", True)

    page.goto("/admin/rankings")
    with page.expect_download() as download_info:
        page.click("text=Download CSV")
    download = download_info.value
    assert download.suggested_filename == "rankings.csv"
    with open(download.path(), encoding="utf-8") as exported:
        rows = list(csv.DictReader(io.StringIO(exported.read())))
    assert len(rows) == len(result.candidates)
    assert {r["ranking_id"] for r in rows} == {str(result.ranking_id)}


def test_overview_charts_screenshot(page, server) -> None:
    """Seeds a month of rankings and saves a screenshot of the overview for a person to look at."""
    now = datetime.now(timezone.utc)
    with server.components.sessions.begin() as session:
        default = store.default_preset(session)
        for i in range(60):
            log = store.record_ranking(
                session,
                question=f"Seeded question {i}",
                channel="C0SEED0001",
                user="U1",
                preset=default,
                instruction=default.instruction,
                collection="kb",
                answer="An answer [1]",
                status="ok",
                error=None,
                rerank_status="ok",
                reranker="tiny",
                timings_ms={"embed": 8 + i % 5, "search": 1.0, "rerank": 150 + 7 * (i % 13), "answer": 2, "total": 170},
                candidates=[
                    {
                        "point_id": f"p{i}-{r}",
                        "doc_id": "d",
                        "title": "T",
                        "source": "https://docs.example/t",
                        "section": "",
                        "text": "x",
                        "retrieval_rank": r,
                        "retrieval_score": 0.5,
                        "rerank_rank": r,
                        "rerank_score": max(0.0, 0.95 - 0.1 * r + 0.01 * (i % 7)),
                        "used": r <= 3,
                        "citation": r if r <= 3 else None,
                    }
                    for r in range(1, 9)
                ],
            )
            log.created_at = now - timedelta(days=i % 20, hours=i % 5)
            if i % 3:
                store.add_feedback(session, log.id, 1 if i % 4 else -1, user=f"U{i}")
    sign_in(page, "alice")
    page.set_viewport_size({"width": 1280, "height": 1100})
    page.goto("/admin/")
    for chart in ("#chart-questions", "#chart-feedback", "#chart-scores", "#chart-latency"):
        assert page.locator(f"{chart} svg, svg{chart}").count() >= 1, chart
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "overview.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
