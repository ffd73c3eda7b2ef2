"""Issue 13 on the admin app, one test per finding, each the request that showed it: forms are bounded before
anything parses them (no sign-in or CSRF token needed to be refused), every response carries the security
headers, ids past 2^63 and dates at the end of the calendar are clear errors or whole answers (never a 500 or a
CSV cut off), the playground's CSV is safe to open in a spreadsheet, and `create-user --team` takes only a team
that owns a preset."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from starlette.formparsers import FormParser, MultiPartParser

import store
from admin.middleware import CONTENT_SECURITY_POLICY, MAX_BODY_BYTES, MAX_FORM_FIELDS
from tests.admin.test_rankings import T0, seed
from tests.browser.conftest import LiveServer
from tests.raw_http import post_raw

CSRF_OR_LOGIN = (401, 403)


@pytest.fixture
def no_form_parsing(monkeypatch) -> list[str]:
    """Fails a test when Starlette parses any form; returns the parsers that were asked to."""
    called: list[str] = []

    async def refuse(self) -> None:
        called.append(type(self).__name__)
        raise AssertionError("a form was parsed")

    monkeypatch.setattr(FormParser, "parse", refuse)
    monkeypatch.setattr(MultiPartParser, "parse", refuse)
    return called


@pytest.fixture
def live_server(admin_app) -> Iterator[LiveServer]:
    """The admin app behind a real uvicorn on 127.0.0.1, for bodies a test client cannot send (chunked, or a
    Content-Length with nothing behind it)."""
    server = LiveServer(admin_app)
    yield server
    server.stop()


def _port(server: LiveServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


# -- bounded input ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/admin/login", "/admin/presets/new", "/admin/logout"])
def test_a_thousand_fields_are_refused_before_any_parsing_or_sign_in(client, no_form_parsing, url) -> None:
    fields = {f"f{i}": "x" for i in range(1000)}
    response = client.post(url, data=fields, follow_redirects=False)
    assert response.status_code == 413
    assert f"more than {MAX_FORM_FIELDS} fields" in response.text
    assert not no_form_parsing
    multipart = client.post(url, files={f"f{i}": (None, "x") for i in range(1000)}, follow_redirects=False)
    assert multipart.status_code == 413 and not no_form_parsing


def test_an_oversized_body_is_refused_before_csrf_or_sign_in(client, no_form_parsing) -> None:
    big = {"instruction": "x" * (MAX_BODY_BYTES + 1)}
    for url in ("/admin/login", "/admin/presets/new", "/admin/presets/1", "/admin/rankings/1/labels"):
        response = client.post(url, data=big, follow_redirects=False)
        assert response.status_code == 413, url
        assert f"limit of {MAX_BODY_BYTES:,} bytes" in response.text
    assert not no_form_parsing


def test_a_declared_length_over_the_limit_is_refused_before_a_byte_is_read(live_server) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": "1000000000"}
    reply = post_raw(_port(live_server), "/admin/presets/new", form)  # nothing of the billion bytes is sent
    assert reply.status == 413, reply.head
    assert b"content-security-policy" in reply.head.lower()


def test_a_chunked_body_is_cut_off_at_the_limit(live_server) -> None:
    """The body never ends (no last chunk): a server that read it whole would never answer."""
    chunk = b"a=" + b"x" * (16 * 1024 - 2)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    pieces = (chunk for _ in range(8 * MAX_BODY_BYTES // len(chunk)))
    reply = post_raw(_port(live_server), "/admin/presets/new", form, pieces, chunked=True, finish=False, timeout=20)
    assert reply.status == 413, reply.head
    assert reply.sent > MAX_BODY_BYTES


def test_admin_forms_at_their_limits_still_fit(as_user) -> None:
    """The limits leave room for the longest real forms, percent-encoded Chinese included: a preset instruction
    one character over its limit gets the form's own message, not a 413."""
    sam = as_user("sam")
    response = sam.form("/admin/presets/new", {"name": "sales-cn", "team": "sales", "instruction": "中" * 1001})
    assert response.status_code == 422 and "At most 1,000 characters" in response.text
    lines = "\n".join("中" * 4000 for _ in range(101))  # 101 candidates of 4,000 characters: 3.6 MB encoded
    playground = sam.form("/admin/playground/rank", {"query": "q", "candidates": lines, "preset": ""})
    assert playground.status_code == 400 and "There are 101 candidates" in playground.text


# -- security headers -------------------------------------------------------------------------------------------


def assert_security_headers(response) -> None:
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY and "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"


def test_every_response_carries_the_security_headers(client, as_user) -> None:
    anonymous = [
        client.get("/admin/login"),
        client.get("/admin/", follow_redirects=False),  # the redirect to sign in
        client.get("/admin/static/admin.css"),
        client.post("/admin/logout", follow_redirects=False),  # 403: no CSRF token
        client.post("/admin/login", content=b"x" * (MAX_BODY_BYTES + 1)),  # 413
    ]
    rita = as_user("rita")
    signed_in = [
        rita.get("/admin/"),
        rita.get("/admin/rankings/999999"),  # 404 page
        rita.get("/admin/presets"),  # 403 page
        rita.get("/admin/rankings/export.csv"),
    ]
    assert [r.status_code for r in anonymous] == [200, 303, 200, 403, 413]
    assert [r.status_code for r in signed_in] == [200, 404, 403, 200]
    for response in anonymous + signed_in:
        assert_security_headers(response)


def test_no_page_has_inline_script_or_style() -> None:
    """What the CSP would block: inline <script>, style attributes or elements, on* handlers, javascript: links."""
    import re

    templates = Path(__file__).resolve().parents[2] / "admin" / "templates"
    for template in templates.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), template.name
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=|javascript:", text, re.I), template.name


# -- ids and dates ----------------------------------------------------------------------------------------------

HUGE_IDS = (2**63, 2**64, 10**30)


def test_ids_past_two_to_the_63_are_clear_errors(as_user, sessions) -> None:
    alice = as_user("alice")
    for n in HUGE_IDS:
        for response in (
            alice.get(f"/admin/presets/{n}"),
            alice.get(f"/admin/presets/1/versions/{n}"),
            alice.get(f"/admin/rankings/{n}"),
            alice.form(f"/admin/presets/{n}", {"instruction": "x"}),
            alice.form(f"/admin/presets/1/versions/{n}/restore", {}),
            alice.form(f"/admin/bindings/{n}/delete", {}),
            alice.form(f"/admin/rankings/{n}/labels", {"candidate_id": "1", "relevant": "1"}),
        ):
            assert response.status_code == 422, (n, response.request.url)
            assert "less than or equal to 9223372036854775807" in response.text
    assert alice.get(f"/admin/presets/{2**63 - 1}").status_code == 404  # the largest id is a plain "no such"
    with sessions.begin() as s:
        ranking_id = seed(s, "Q1")
    label = alice.form(f"/admin/rankings/{ranking_id}/labels", {"candidate_id": str(2**64), "relevant": "1"})
    assert label.status_code == 400 and "Send candidate_id" in label.text
    as_json = alice.get(f"/admin/presets/{2**64}", headers={"accept": "application/json"})
    assert as_json.status_code == 422 and "preset_id" in as_json.json()["error"]


def test_the_end_of_the_calendar_filters_and_exports_whole(as_user, sessions) -> None:
    with sessions.begin() as s:
        seed(s, "Q1", when=T0)
        seed(s, "Q2", when=T0 + timedelta(days=1))
    rita = as_user("rita")
    for query in ("date_to=9999-12-31", "date_from=0001-01-01&date_to=9999-12-31", "date_from=9999-12-31"):
        page = rita.get(f"/admin/rankings?{query}")
        assert page.status_code == 200, query
        export = rita.get(f"/admin/rankings/export.csv?{query}")
        assert export.status_code == 200, query
        rows = list(csv.reader(io.StringIO(export.text)))
        expected = 0 if query.startswith("date_from=9999") else 4  # two rankings of two candidates each
        assert len(rows) == 1 + expected, query
        jsonl = rita.get(f"/admin/labels/export.jsonl?{query}")
        assert jsonl.status_code == 200
    bad = rita.get("/admin/rankings/export.csv?date_to=10000-01-01")
    assert bad.status_code == 400 and "date_to must be a date" in bad.text


# -- spreadsheet formulas in the playground's CSV ---------------------------------------------------------------


def test_the_playground_csv_neutralises_formulas(live) -> None:
    formulas = ['=HYPERLINK("https://evil.example","x")', "+1+1", "-2+3", "@SUM(A1:A2)", "plain text"]
    client = live("rita")
    export = client.form(
        "/admin/playground/rank.csv", {"query": "Can Starter use SSO?", "candidates": "\n".join(formulas)}
    )
    assert export.status_code == 200, export.text
    table = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    texts = sorted(row[3] for row in table[1:])
    assert texts == sorted(["'" + f for f in formulas[:4]] + ["plain text"])
    assert all(float(row[1]) == float(row[1]) for row in table[1:])  # scores stay numbers


# -- create-user --team -----------------------------------------------------------------------------------------


def test_create_user_takes_only_a_known_team(tmp_path: Path, monkeypatch, capsys) -> None:
    from tests.e2e.test_cli import run_cli

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'users.db'}")
    monkeypatch.setenv("RAGBOT_ADMIN_PASSWORD", "a long enough password")
    cases = [
        (("--role", "team_admin", "--team", "sales; DROP TABLE users"), "Invalid team 'sales; DROP TABLE users'"),
        (("--role", "team_admin", "--team", "x" * 65), "Invalid team"),
        (("--role", "team_admin", "--team", "support"), "No team 'support'. Known teams: default"),
        (("--role", "reviewer", "--team", "default"), "Only a team_admin takes --team"),
        (("--role", "admin", "--team", "default"), "Only a team_admin takes --team"),
    ]
    for args, message in cases:
        code, _, err = run_cli(capsys, "admin", "create-user", "nina", *args)
        assert code == 1, args
        assert message in " ".join(err.split()), (args, err)
        assert "Traceback" not in err
    code, out, _ = run_cli(capsys, "admin", "create-user", "nina", "--role", "team_admin", "--team", "default")
    assert code == 0 and "Created team_admin 'nina' of team 'default'" in out

    engine = store.make_engine(f"sqlite:///{tmp_path / 'users.db'}")
    with store.session_factory(engine)() as session:
        assert [u.name for u in session.query(store.User)] == ["nina"]  # none of the refused ones
        entry = session.query(store.AuditEntry).one()
        assert (entry.actor, entry.action, entry.target) == ("cli", "user.create", "user nina")
        assert entry.before is None and entry.after == {"role": "team_admin", "team": "default"}
    engine.dispose()
