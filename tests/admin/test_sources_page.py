"""The sources pages: what an admin sees of each source and its syncs, who may see them, "Sync now" (which only
marks the source for the scheduler, CSRF-checked and audited), and that no secret reaches the page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

import store
from admin.sources import schedule_text
from store.models import Source, SourceDocument, SourceSync, utcnow

TOKEN_SECRET = "tok-5ecret-9f8e7d6c"
URL_PASSWORD = "pw-in-the-url-4711"
SETTING_KEY = "key-in-settings-1234"
ERRORS = {f"ticket/{n}": f"HTTP 500 on ticket {n}" for n in range(1, 8)}  # 7: five shown, "and 2 more"


def seed(sessions) -> None:
    """handbook: synced fine, 3 documents, every 6h. helpdesk: its latest sync failed (an older one passed), with
    a token variable and credentials in a setting and in the error. wiki: never synced, on demand."""
    now = utcnow()
    with sessions.begin() as session:
        handbook = Source(
            name="handbook", kind="folder", settings={"path": "/srv/docs"}, collection="kb", every_s=21600
        )
        helpdesk = Source(
            name="helpdesk",
            kind="zendesk",
            settings={"url": f"https://bot:{URL_PASSWORD}@acme.zendesk.com/api/v2", "api_key": SETTING_KEY},
            collection="support",
            every_s=3600,
            token_env="HELPDESK_TOKEN",
        )
        wiki = Source(name="wiki", kind="confluence", settings={"spaces": ["ENG"]}, collection="kb")
        session.add_all([handbook, helpdesk, wiki])
        session.flush()
        started = now - timedelta(hours=1)
        session.add(
            SourceSync(
                source_id=handbook.id,
                started_at=started,
                finished_at=started + timedelta(seconds=42),
                status="ok",
                added=2,
                changed=1,
                removed=4,
                unchanged=5,
            )
        )
        session.add_all(SourceDocument(source_id=handbook.id, key=f"doc-{n}.md") for n in range(3))
        session.add(
            SourceSync(
                source_id=helpdesk.id,
                started_at=now - timedelta(days=1),
                finished_at=now - timedelta(days=1) + timedelta(seconds=5),
                status="ok",
                added=9,
            )
        )
        session.add(
            SourceSync(
                source_id=helpdesk.id,
                started_at=started,
                finished_at=started + timedelta(minutes=3, seconds=5),
                status="failed",
                unchanged=11,
                failed=7,
                errors=ERRORS,
                error=f"401 from https://bot:{URL_PASSWORD}@acme.zendesk.com/api/v2/tickets?token={TOKEN_SECRET}",
            )
        )


def row(html: str, name: str) -> str:
    match = re.search(rf'<tr id="source-{name}">.*?</tr>', html, re.S)
    assert match, f"the page has a row for {name}"
    return match.group(0)


def requested_at(sessions, name: str):
    with sessions() as session:
        return session.scalar(select(Source.sync_requested_at).where(Source.name == name))


def audit_rows(sessions) -> list[tuple[str, str, str]]:
    with sessions() as session:
        return [(e.actor, e.action, e.target) for e in session.scalars(select(store.AuditEntry))]


@pytest.mark.parametrize(
    ("every_s", "text"),
    [(21600, "every 6h"), (5400, "every 90m"), (86400, "every 1d"), (45, "every 45s"), (None, "on demand")],
)
def test_a_schedule_reads_in_the_largest_exact_unit(every_s: int | None, text: str) -> None:
    assert schedule_text(every_s) == text


def test_an_admin_sees_each_source_with_its_schedule_status_counts_and_errors(as_user, sessions) -> None:
    seed(sessions)
    page = as_user("alice").get("/admin/sources")
    assert page.status_code == 200

    handbook = row(page.text, "handbook")
    assert all(text in handbook for text in ("folder", "kb", "every 6h", ">ok<", "42 s", "+2", "~1", "−4", "=5"))
    assert re.search(r'class="number">3<', handbook)  # documents held
    assert 'href="http://testserver/admin/sources/handbook"' in handbook

    helpdesk = row(page.text, "helpdesk")
    assert ">failed<" in helpdesk and ">ok<" not in helpdesk  # the latest sync counts, not the older good one
    assert "3 min 5 s" in helpdesk and "✗7" in helpdesk and "=11" in helpdesk
    assert "401 from https://bot:***@acme.zendesk.com" in helpdesk  # the whole sync's error, masked
    shown = re.findall(r"<code>(ticket/\d)</code>", helpdesk)
    assert shown == ["ticket/1", "ticket/2", "ticket/3", "ticket/4", "ticket/5"] and "and 2 more" in helpdesk
    assert "HTTP 500 on ticket 5" in helpdesk and "HTTP 500 on ticket 6" not in helpdesk

    wiki = row(page.text, "wiki")
    assert "never synced" in wiki and "on demand" in wiki and "confluence" in wiki
    assert 'href="http://testserver/admin/sources"' in page.text  # in the menu


def test_a_source_page_lists_its_last_20_syncs_newest_first(as_user, sessions) -> None:
    seed(sessions)
    with sessions.begin() as session:
        wiki = session.scalar(select(Source).where(Source.name == "wiki"))
        start = utcnow() - timedelta(days=30)
        session.add_all(
            SourceSync(source_id=wiki.id, started_at=start + timedelta(hours=n), status="ok", added=n)
            for n in range(25)
        )
        session.add(SourceSync(source_id=wiki.id, started_at=utcnow(), status="running"))
    page = as_user("alice").get("/admin/sources/wiki")
    assert page.status_code == 200 and "Last 20 syncs" in page.text
    history = re.search(r'<table id="history">.*?</table>', page.text, re.S).group(0)
    assert history.count("<tr>") == 1 + 20  # the header and 20 syncs
    added = [int(n) for n in re.findall(r'title="added">\+(\d+)<', history)]
    assert added == [0, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6]
    assert ">running<" in history and "so far" in history  # the newest is still running
    assert re.search(r"Documents</dt><dd>0<", page.text)


@pytest.mark.parametrize("name", ["rita", "sam"])
def test_reviewers_and_team_admins_get_403(as_user, sessions, name: str) -> None:
    seed(sessions)
    other = as_user(name)
    assert other.get("/admin/sources").status_code == 403
    assert other.get("/admin/sources/handbook").status_code == 403
    assert other.form("/admin/sources/handbook/sync", {}).status_code == 403
    assert requested_at(sessions, "handbook") is None and audit_rows(sessions) == []
    assert "/admin/sources" not in other.get("/admin/").text  # not in their menu


def test_sync_now_marks_the_source_for_the_scheduler_and_is_audited(as_user, sessions) -> None:
    seed(sessions)
    alice = as_user("alice")
    before = utcnow()
    response = alice.form("/admin/sources/wiki/sync", {})
    assert response.status_code == 303
    assert response.headers["location"] == "http://testserver/admin/sources?requested=wiki"
    assert requested_at(sessions, "wiki") >= before - timedelta(seconds=1)
    assert requested_at(sessions, "handbook") is None
    assert audit_rows(sessions) == [("alice", "source.sync", "source wiki")]
    page = alice.get(response.headers["location"])
    assert "Sync of wiki requested" in page.text and "sync requested" in row(page.text, "wiki")
    assert "sync requested" not in row(page.text, "handbook")

    # from the source's own page, back to it
    response = alice.form("/admin/sources/handbook/sync", {"back": "source"})
    assert response.headers["location"] == "http://testserver/admin/sources/handbook?requested=handbook"
    assert "Sync of handbook requested" in alice.get(response.headers["location"]).text
    # the notice names only a source that is waiting for its sync: the query string cannot write on the page
    spoofed = alice.get("/admin/sources?requested=Your+account+is+locked").text
    assert "locked" not in spoofed and 'role="status"' not in spoofed


def test_sync_now_without_the_csrf_token_is_refused(as_user, sessions) -> None:
    seed(sessions)
    alice = as_user("alice")
    for data in ({}, {"csrf_token": "forged"}):
        response = alice.post("/admin/sources/wiki/sync", data=data, follow_redirects=False)
        assert response.status_code == 403 and "CSRF" in response.text
    assert requested_at(sessions, "wiki") is None and audit_rows(sessions) == []


def test_an_unknown_source_is_a_404_page(as_user, sessions) -> None:
    seed(sessions)
    alice = as_user("alice")
    page = alice.get("/admin/sources/nope")
    assert page.status_code == 404 and "No source named &#39;nope&#39;" in page.text
    response = alice.form("/admin/sources/nope/sync", {})
    assert response.status_code == 404 and "No source named" in response.text
    assert audit_rows(sessions) == []


def test_no_token_or_credential_reaches_the_pages(as_user, sessions, monkeypatch) -> None:
    monkeypatch.setenv("HELPDESK_TOKEN", TOKEN_SECRET)
    seed(sessions)
    alice = as_user("alice")
    for path in ("/admin/sources", "/admin/sources/helpdesk"):
        html = alice.get(path).text
        assert "HELPDESK_TOKEN" in html  # the variable's name says where the token comes from
        assert TOKEN_SECRET not in html and URL_PASSWORD not in html and SETTING_KEY not in html
    detail = alice.get("/admin/sources/helpdesk").text
    assert "https://bot:***@acme.zendesk.com/api/v2" in detail  # the setting, masked, still says where
    assert re.search(r"<dt>api_key</dt><dd><code>\(hidden\)</code>", detail)
