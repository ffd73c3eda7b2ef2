"""The Zendesk connector against a local server playing the Help Center API: a help center that changes between
two syncs, cursor pagination, drafts, section paths, rate limits, refused tokens and a listing that fails."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from retrieval.loaders import load_document
from retrieval.sources import Changed, Failed, KnownDocument, SourceAuthError, SourceError, Unchanged
from retrieval.sources.zendesk import ZendeskConnector
from tests.retrieval.sources.fake_zendesk import FakeZendesk

TOKEN_ENV = "ZENDESK_API_TOKEN"
ARTICLES = "/api/v2/help_center/articles.json"


@pytest.fixture
def zendesk() -> Iterator[FakeZendesk]:
    fake = FakeZendesk()
    fake.add_category(1, "Billing")
    fake.add_section(10, "Invoices", 1)
    fake.add_section(11, "Refunds", 1, parent_section_id=10)
    fake.add_article(100, "Download an invoice", "<p>Open <b>Billing</b> and press Download.</p>", 10)
    fake.add_article(
        101, "Refund window", "<p>Refunds are possible within 30 days.</p>", 11, labels=("refund", "policy")
    )
    fake.add_article(102, "Unreleased plan", "<p>Secret pricing.</p>", 10, draft=True)
    fake.add_article(103, "VAT numbers", "<p>Add your VAT number on the invoice page.</p>", 10, author_id=4242)
    yield fake
    fake.close()


def connect(fake: FakeZendesk, sleeps: list[float] | None = None, **kwargs) -> ZendeskConnector:
    options = {"email": fake.email, "token": fake.token, "token_env": TOKEN_ENV, "page_size": 2, **kwargs}
    record = sleeps.append if sleeps is not None else (lambda seconds: None)
    return ZendeskConnector(fake.url, sleep=record, **options)


def by_key(items) -> dict[str, object]:
    return {item.meta.key if isinstance(item, Changed) else item.key: item for item in items}


def test_a_help_center_that_changes_between_two_syncs(zendesk: FakeZendesk, tmp_path: Path) -> None:
    with connect(zendesk) as connector:
        first = by_key(connector.walk({}))
    assert set(first) == {"100", "101", "103"}  # the draft is not published
    assert all(isinstance(item, Changed) for item in first.values())
    refund = first["101"]
    assert refund.meta.url == f"{zendesk.url}/hc/en-us/articles/101-refund-window"
    assert refund.meta.title == "Refund window"
    assert refund.meta.section == ("Billing", "Invoices", "Refunds")
    assert refund.meta.tags == ("refund", "policy")
    assert refund.meta.author == "3001"
    assert refund.meta.updated == datetime.fromisoformat(zendesk.articles[101]["edited_at"].replace("Z", "+00:00"))
    assert refund.meta.updated.tzinfo == timezone.utc
    assert refund.version == zendesk.articles[101]["updated_at"]
    assert refund.name == "article.html"
    assert first["100"].meta.section == ("Billing", "Invoices")
    assert first["103"].meta.author == "4242"
    # The wrapped body reads as an HTML document with the article's title and text.
    saved = tmp_path / refund.name
    saved.write_text(refund.content, encoding="utf-8")
    loaded = load_document(saved)
    assert loaded.title == "Refund window"
    assert "within 30 days" in " ".join(block.text for block in loaded.blocks)
    # Four listed articles at two a page: followed through the cursor, page[size] on every page, auth on every one.
    article_pages = [logged for logged in zendesk.requests if logged.path == ARTICLES]
    assert [logged.query.get("page[size]") for logged in article_pages] == [["2"], ["2"]]
    assert "page[after]" not in article_pages[0].query and "page[after]" in article_pages[1].query
    assert all(logged.authorization and logged.authorization.startswith("Basic ") for logged in zendesk.requests)

    zendesk.edit_article(100, "<p>Open <b>Billing</b>, then Invoices, and press Download PDF.</p>")
    zendesk.add_article(104, "Change the billing email", "<p>Billing emails go to the account owner.</p>", 10)
    zendesk.delete_article(103)
    known = {key: KnownDocument(key, version=item.version) for key, item in first.items()}
    zendesk.requests.clear()
    with connect(zendesk) as connector:
        second = by_key(connector.walk(known))
    assert set(second) == {"100", "101", "104"}  # 103 was deleted: absent, so the sync prunes it
    assert isinstance(second["101"], Unchanged)
    assert isinstance(second["100"], Changed) and "Download PDF" in second["100"].content
    assert second["100"].version != first["100"].version
    assert isinstance(second["104"], Changed) and second["104"].meta.section == ("Billing", "Invoices")

    # Nothing changed since: only the article list is read (no sections or categories), everything Unchanged.
    known = {
        **known,
        **{key: KnownDocument(key, version=item.version) for key, item in second.items() if isinstance(item, Changed)},
    }
    zendesk.requests.clear()
    with connect(zendesk) as connector:
        third = list(connector.walk(known))
    assert sorted(item.key for item in third) == ["100", "101", "104"]
    assert all(isinstance(item, Unchanged) for item in third)
    assert set(zendesk.paths()) == {ARTICLES}


def test_a_rate_limit_is_waited_out_as_retry_after_says(zendesk: FakeZendesk) -> None:
    zendesk.fail(ARTICLES, 429, headers={"Retry-After": "7"}, cursor_only=True)
    sleeps: list[float] = []
    with connect(zendesk, sleeps) as connector:
        items = list(connector.walk({}))
    assert sleeps == [7.0]
    assert sorted(item.meta.key for item in items) == ["100", "101", "103"]
    assert not any(isinstance(item, Failed) for item in items)


def test_a_refused_token_names_its_variable(zendesk: FakeZendesk) -> None:
    with connect(zendesk, token="revoked") as connector, pytest.raises(SourceAuthError, match=TOKEN_ENV):
        list(connector.walk({}))
    assert zendesk.requests[0].authorization is not None  # it was sent, and refused


def test_an_oauth_token_without_email_goes_as_bearer(zendesk: FakeZendesk) -> None:
    with connect(zendesk, email=None, token=zendesk.oauth_token) as connector:
        items = list(connector.walk({}))
    assert len(items) == 3
    assert {logged.authorization for logged in zendesk.requests} == {f"Bearer {zendesk.oauth_token}"}


def test_a_listing_that_fails_halfway_fails_the_sync(zendesk: FakeZendesk) -> None:
    zendesk.fail(ARTICLES, 500, cursor_only=True)
    with connect(zendesk) as connector, pytest.raises(SourceError, match=r"cannot list Zendesk articles.*HTTP 500"):
        list(connector.walk({}))


def test_a_locale_reads_that_locale_s_lists(zendesk: FakeZendesk) -> None:
    zendesk.add_article(200, "Rechnung herunterladen", "<p>Unter Abrechnung.</p>", 10, locale="de")
    with connect(zendesk, locale="de") as connector:
        items = list(connector.walk({}))
    assert [item.meta.key for item in items] == ["200"]
    assert items[0].meta.url.endswith("/hc/de/articles/200-rechnung-herunterladen")
    assert "/api/v2/help_center/de/articles.json" in zendesk.paths()


def test_a_url_without_scheme_is_refused_clearly() -> None:
    with pytest.raises(SourceError, match="must start with https://"):
        ZendeskConnector("acme.zendesk.com", email=None, token=None, token_env=TOKEN_ENV)
