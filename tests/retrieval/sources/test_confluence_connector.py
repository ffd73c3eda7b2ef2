"""The Confluence connector against a local site speaking the v1 REST API (tests/retrieval/sources/fake_confluence.py):
two walks over a space that changes in between, a page that fails alone, a rate limit waited out, a refused token."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from retrieval.loaders import parse_html
from retrieval.sources import Changed, Failed, KnownDocument, SourceAuthError, SourceError, Unchanged
from retrieval.sources.confluence import ConfluenceConnector
from tests.retrieval.sources.fake_confluence import ConfluenceState, WikiPage, serve_fake_confluence

EMAIL, TOKEN = "ana@example.com", "ATATT3xFfGF0-api-token"
CODE = (
    '<ac:structured-macro ac:name="code"><ac:parameter ac:name="language">bash</ac:parameter>'
    '<ac:plain-text-body><![CDATA[kubectl rollout undo deploy/api --to-revision=41 && echo "<done>"]]>'
    "</ac:plain-text-body></ac:structured-macro>"
)


def site() -> ConfluenceState:
    state = ConfluenceState(email=EMAIL, token=TOKEN, spaces={"ENG": "Engineering", "OPS": "Operations"})
    state.add(WikiPage("101", "ENG", "Handbook", "<p>How we work.</p>", labels=("onboarding",)))
    state.add(WikiPage("102", "ENG", "Deploys", "<p>Deploys run on Tuesdays.</p>", parent="101"))
    state.add(
        WikiPage(
            "103",
            "ENG",
            "Rollback",
            f"<h2>Undo a release</h2><p>Roll back the API with:</p>{CODE}",
            parent="102",
            number=4,
            when="2026-10-30T16:45:12.345Z",
            author="Bo Chen",
            labels=("runbook", "ops"),
        )
    )
    state.add(WikiPage("104", "ENG", "Pricing FAQ", "<p>Seats are billed monthly.</p>"))
    state.add(WikiPage("105", "ENG", "Old notes", "<p>Obsolete.</p>"))
    state.add(WikiPage("201", "OPS", "On-call", "<p>Page the primary first.</p>"))
    return state


def connector(url: str, sleeps: list[float] | None = None, **overrides: object) -> ConfluenceConnector:
    options: dict = {
        "email": EMAIL,
        "token": TOKEN,
        "token_env": "CONFLUENCE_TOKEN",
        "sleep": ([] if sleeps is None else sleeps).append,
    }
    options.update(overrides)
    return ConfluenceConnector(url, ["ENG", "OPS"], **options)


def test_two_walks_list_everything_then_fetch_only_what_changed() -> None:
    state = site()
    with serve_fake_confluence(state) as url, connector(url) as wiki:
        first = list(wiki.walk({}))
        assert all(isinstance(item, Changed) for item in first)
        by_key = {item.meta.key: item for item in first if isinstance(item, Changed)}
        assert sorted(by_key) == ["101", "102", "103", "104", "105", "201"]

        rollback = by_key["103"]
        assert rollback.meta.url == f"{url}/spaces/ENG/pages/103/Rollback"
        assert rollback.meta.title == "Rollback"
        assert rollback.meta.section == ("Engineering", "Handbook", "Deploys")
        assert rollback.meta.updated == datetime(2026, 10, 30, 16, 45, 12, 345000, tzinfo=timezone.utc)
        assert rollback.meta.author == "Bo Chen"
        assert rollback.meta.tags == ("runbook", "ops")
        assert rollback.version == "4" and rollback.name == "page.html"
        assert by_key["201"].meta.section == ("Operations",)
        assert by_key["101"].meta.section == ("Engineering",) and by_key["101"].meta.tags == ("onboarding",)

        # The storage XHTML reads as a page: its title, its heading, and the code macro's code (CDATA) kept.
        page = parse_html(rollback.content, Path(rollback.name))
        assert page.title == "Rollback"
        text = "\n".join(block.text for block in page.blocks)
        assert "kubectl rollout undo deploy/api --to-revision=41" in text and '"<done>"' in text
        assert any("Undo a release" in block.section for block in page.blocks)

        # Listings ask for metadata only and follow the cursor links: ENG's 5 pages two at a time, OPS's 1.
        listings = [q for path, q in state.requests if path == "/wiki/rest/api/content"]
        assert [(q["spaceKey"], q.get("cursor") is not None) for q in listings] == [
            ("ENG", False),
            ("ENG", True),
            ("ENG", True),
            ("OPS", False),
        ]
        assert all("body" not in q["expand"] for q in listings)

        known = {key: KnownDocument(key, version=item.version) for key, item in by_key.items()}
        state.edit("102", "<p>Deploys run on Tuesdays and Thursdays.</p>", when="2026-11-05T08:00:00.000Z")
        state.add(WikiPage("106", "ENG", "Incident review", "<p>Blameless, within a week.</p>", parent="101"))
        del state.pages["105"]
        state.requests.clear()

        second = list(wiki.walk(known))

    kinds = {item.key if not isinstance(item, Changed) else item.meta.key: type(item) for item in second}
    assert kinds == {
        "101": Unchanged,
        "102": Changed,
        "103": Unchanged,
        "104": Unchanged,
        "106": Changed,
        "201": Unchanged,
    }
    changed = {item.meta.key: item for item in second if isinstance(item, Changed)}
    assert changed["102"].version == "2" and "Thursdays" in str(changed["102"].content)
    assert changed["102"].meta.updated == datetime(2026, 11, 5, 8, 0, tzinfo=timezone.utc)
    assert changed["106"].meta.section == ("Engineering", "Handbook")
    assert state.body_requests() == ["102", "106"]  # the unchanged pages' bodies were never fetched


def test_a_page_whose_body_fails_is_failed_and_the_walk_goes_on() -> None:
    state = site()
    state.fail_body.add("103")
    with serve_fake_confluence(state) as url, connector(url) as wiki:
        items = list(wiki.walk({}))
    failed = [item for item in items if isinstance(item, Failed)]
    assert [(f.key, f.url) for f in failed] == [("103", f"{url}/spaces/ENG/pages/103/Rollback")]
    assert "HTTP 500" in failed[0].reason
    assert sorted(item.meta.key for item in items if isinstance(item, Changed)) == ["101", "102", "104", "105", "201"]


def test_a_rate_limit_is_waited_out_for_as_long_as_retry_after_says() -> None:
    state = site()
    state.throttle_once.update({"/wiki/rest/api/content", "/wiki/rest/api/content/104"})
    sleeps: list[float] = []
    with serve_fake_confluence(state) as url, connector(url, sleeps) as wiki:
        items = list(wiki.walk({}))
    assert sleeps == [7.0, 7.0]
    assert len(items) == 6 and all(isinstance(item, Changed) for item in items)


def test_a_refused_token_names_its_variable() -> None:
    state = site()
    with (
        serve_fake_confluence(state) as url,
        connector(url, token="revoked") as wiki,
        pytest.raises(SourceAuthError, match="CONFLUENCE_TOKEN"),
    ):
        list(wiki.walk({}))


def test_a_personal_access_token_without_email_is_sent_as_bearer() -> None:
    state = site()
    state.email = None
    with serve_fake_confluence(state) as url, connector(url, email=None) as wiki:
        assert len(list(wiki.walk({}))) == 6


def test_a_failed_listing_or_an_unknown_space_fails_the_whole_walk() -> None:
    state = site()
    state.fail_listing = True
    with serve_fake_confluence(state) as url:
        with connector(url) as wiki, pytest.raises(SourceError, match="HTTP 500"):
            list(wiki.walk({}))
        state.fail_listing = False
        missing = ConfluenceConnector(url, ["NOPE"], email=EMAIL, token=TOKEN, token_env="CONFLUENCE_TOKEN")
        with missing, pytest.raises(SourceError, match="no space 'NOPE'"):
            list(missing.walk({}))
