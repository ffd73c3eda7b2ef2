"""The web connector against a real HTTP server on 127.0.0.1 (tests/retrieval/sources/web_site.py): sitemaps nested
and with lastmod, a crawl bounded by folder, robots.txt and max_pages, canonical URLs, re-syncs that cost 304s or
nothing, and failures that stay one page's or fail the sync."""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone

import pytest

from retrieval.sources import Changed, Failed, KnownDocument, SourceAuthError, SourceError, Unchanged
from retrieval.sources.web import WebConnector, normalize_url
from tests.retrieval.sources.web_site import WebSite, html

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)
T1 = T0 + timedelta(days=3)
ROBOTS = "User-agent: *\nDisallow: /docs/private/\n"
PDF = b"%PDF-1.4\n% a linked file\n"


def walk(site: WebSite, start: str = "/docs/", known: Mapping[str, KnownDocument] | None = None, **options) -> list:
    options.setdefault("min_interval", 0)
    with WebConnector(site.url(start), **options) as connector:
        return list(connector.walk(known or {}))


def by_key(items: Iterable) -> dict:
    return {(item.meta.key if isinstance(item, Changed) else item.key): item for item in items}


def remember(items: Iterable, known: Mapping[str, KnownDocument] | None = None) -> dict[str, KnownDocument]:
    """What the sync engine keeps after a walk: validators, version and extra of changed documents."""
    kept = dict(known or {})
    for item in items:
        if isinstance(item, Changed):
            kept[item.meta.key] = KnownDocument(
                item.meta.key, item.version, item.etag, item.last_modified, extra=dict(item.extra)
            )
    return kept


def docs_site(**options) -> WebSite:
    """/docs/ links (in this order) a print view of /docs/a, /docs/b, a disallowed page, a page outside the
    folder, another site, /docs/a itself (with a fragment), a PDF, an image and a JSON feed; /docs/c is only
    reachable through /docs/a."""
    other = options.pop("other", "http://127.0.0.1:9/elsewhere")
    pages = {
        "/docs/": (
            html(
                "Docs home",
                [
                    "a-print",
                    "/docs/b",
                    "private/x",
                    "/blog/post",
                    other,
                    "a#install",
                    "guide.pdf",
                    "logo.png",
                    "feed",
                    "mailto:sales@example.com",
                ],
            ),
            T0,
        ),
        "/docs/a": (html("Install", ["/docs/c"]), T0),
        "/docs/a-print": (html("Install (print)", ["/docs/c"], canonical="/docs/a"), T0),
        "/docs/b": (html("Billing", ["/docs/"]), T0),
        "/docs/c": (html("Deep page"), T0),
        "/docs/private/x": (html("Private"), T0),
        "/blog/post": (html("Blog"), T0),
        "/docs/guide.pdf": (PDF, T0),
        "/docs/logo.png": (b"\x89PNG", T0),
        "/docs/feed": ('{"items": []}', T0),
    }
    return WebSite(pages, robots=ROBOTS, content_types={"/docs/feed": "application/json"}, **options)


def test_crawl_stays_in_the_folder_obeys_robots_and_merges_canonical_urls() -> None:
    with WebSite({"/elsewhere": (html("Other site"), T0)}) as other, docs_site(other=other.url("/elsewhere")) as site:
        items = walk(site)
        keys = by_key(items)
        assert set(keys) == {site.url(p) for p in ("/docs/", "/docs/a", "/docs/b", "/docs/c", "/docs/guide.pdf")}
        assert all(isinstance(item, Changed) for item in items)
        assert len(items) == len(keys)  # the print view and /docs/a#install are /docs/a, once
        assert site.requests["/docs/private/x"] == 0  # robots.txt Disallow
        assert site.requests["/blog/post"] == 0  # outside /docs/
        assert site.requests["/docs/logo.png"] == 0  # images are never fetched
        assert site.requests["/docs/a"] == 0  # reached through its print view, whose canonical it is
        assert sum(other.requests.values()) == 0  # external links are not followed
        assert site.requests["/docs/feed"] == 1  # fetched, but JSON is not a document
        page = keys[site.url("/docs/a")]
        assert page.meta.url == site.url("/docs/a") and page.meta.title == "Install (print)"
        assert page.extra["fetched"] == site.url("/docs/a-print")
        home = keys[site.url("/docs/")]
        assert home.name.endswith(".html") and home.meta.section == ("docs",)
        assert home.meta.updated == T0 and home.etag and home.last_modified and home.version == ""
        assert home.content == site.pages["/docs/"][0].encode()
        assert site.url("/docs/b") in home.extra["links"] and site.url("/blog/post") not in home.extra["links"]
        pdf = keys[site.url("/docs/guide.pdf")]
        assert pdf.name == "guide.pdf" and pdf.content == PDF


def test_max_pages_bounds_the_crawl() -> None:
    with docs_site() as site:
        items = walk(site, max_pages=2)
        assert [item.meta.key for item in items] == [site.url("/docs/"), site.url("/docs/a")]
        assert site.page_requests() == 2


def test_resync_costs_304s_reuses_links_and_follows_edits_and_deletions() -> None:
    with docs_site() as site:
        known = remember(walk(site))
        site.reset_counts()
        again = walk(site, known=known)
        assert all(isinstance(item, Unchanged) for item in again)
        assert set(by_key(again)) == set(known)  # /docs/c is reached through /docs/a's stored links
        assert sum(site.not_modified.values()) == len(known)  # /docs/a answered 304 through its print view
        assert site.not_modified["/docs/a-print"] == 1 and site.requests["/docs/a"] == 0

        site.pages["/docs/b"] = (html("Billing, new prices", ["/docs/"]), T1)
        site.pages["/docs/a-print"] = (html("Install (print)", [], canonical="/docs/a"), T1)
        del site.pages["/docs/c"]
        third = by_key(walk(site, known=known))
        assert isinstance(third[site.url("/docs/b")], Changed)
        assert third[site.url("/docs/b")].meta.title == "Billing, new prices"
        assert isinstance(third[site.url("/docs/a")], Changed)
        assert site.url("/docs/c") not in third  # gone, not failed: the sync engine prunes it
        assert isinstance(third[site.url("/docs/")], Unchanged)


def test_if_modified_since_alone_gives_304s() -> None:
    with docs_site(etags=False) as site:
        known = remember(walk(site))
        assert all(not doc.etag and doc.last_modified for doc in known.values())
        again = walk(site, known=known)
        assert all(isinstance(item, Unchanged) for item in again) and sum(site.not_modified.values()) >= len(known)


def test_nested_sitemap_with_lastmod_skips_unchanged_pages_without_a_request() -> None:
    pages = {f"/kb/article-{n}": (html(f"Article {n}"), T0 + timedelta(hours=n)) for n in range(5)}
    with WebSite(pages, sitemap="nested", per_sitemap=2) as site:
        first = walk(site, "/sitemap.xml")
        assert len(first) == 5 and all(isinstance(item, Changed) for item in first)
        article = by_key(first)[site.url("/kb/article-3")]
        assert article.version == (T0 + timedelta(hours=3)).isoformat()
        assert article.meta.updated == T0 + timedelta(hours=3) and article.meta.section == ("kb",)
        assert all(site.requests[f"/sitemaps/{n}.xml"] == 1 for n in range(3))
        known = remember(first)

        site.reset_counts()
        second = walk(site, "/sitemap.xml", known=known)
        assert len(second) == 5 and all(isinstance(item, Unchanged) for item in second)
        assert site.page_requests() == 0

        site.pages["/kb/article-1"] = (html("Article 1, revised"), T1)
        site.reset_counts()
        third = by_key(walk(site, "/sitemap.xml", known=known))
        assert (
            isinstance(third[site.url("/kb/article-1")], Changed)
            and third[site.url("/kb/article-1")].version == T1.isoformat()
        )
        assert site.page_requests() == 1


def test_a_discovered_sitemap_is_used_within_the_start_folder() -> None:
    pages = {
        "/docs/": (html("Docs"), T0),
        "/docs/orphan": (html("Linked from nowhere"), T0),
        "/blog/post": (html("Blog"), T0),
    }
    with WebSite(pages, sitemap="flat", sitemap_lastmod=False) as site:
        items = by_key(walk(site))
        assert set(items) == {site.url("/docs/"), site.url("/docs/orphan")}
        assert site.requests["/blog/post"] == 0 and all(item.version == "" for item in items.values())


def test_robots_sitemap_lines_are_preferred_to_sitemap_xml() -> None:
    pages = {f"/docs/{n}": (html(f"Page {n}"), T0) for n in range(4)}
    with WebSite(pages, sitemap="nested", per_sitemap=2) as site:
        site.robots = f"User-agent: *\nAllow: /\nSitemap: {site.url('/sitemaps/1.xml')}\n"
        items = by_key(walk(site, "/docs/"))
        assert set(items) == {site.url("/docs/2"), site.url("/docs/3")}
        assert site.requests["/sitemap.xml"] == 0


def test_a_failing_page_is_failed_and_the_walk_goes_on() -> None:
    with docs_site() as site:
        site.fail["/docs/b"] = 500
        items = by_key(walk(site))
        failed = items[site.url("/docs/b")]
        assert isinstance(failed, Failed) and "500" in failed.reason and failed.url == site.url("/docs/b")
        assert isinstance(items[site.url("/docs/c")], Changed)


def test_429_retry_after_is_waited_then_the_page_is_read() -> None:
    slept: list[float] = []
    with docs_site() as site:
        site.throttle_once["/docs/b"] = 7
        items = by_key(walk(site, sleep=slept.append))
        assert isinstance(items[site.url("/docs/b")], Changed)
        assert slept == [7.0] and site.requests["/docs/b"] == 2


def test_crawl_delay_paces_requests() -> None:
    slept: list[float] = []
    with docs_site() as site:
        site.robots = "User-agent: *\nCrawl-delay: 3\n"
        walk(site, max_pages=2, sleep=slept.append)
        assert len(slept) >= 2 and all(2.5 < wait <= 3.0 for wait in slept)


@pytest.mark.parametrize(("path", "status", "error"), [("/docs/", 500, SourceError), ("/docs/", 401, SourceAuthError)])
def test_the_start_page_failing_fails_the_sync(path: str, status: int, error: type) -> None:
    with docs_site() as site:
        site.fail[path] = status
        with pytest.raises(error, match=str(status)):
            walk(site)


def test_an_unreachable_site_or_sitemap_fails_the_sync() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SourceError, match=r"robots\.txt"):
        list(WebConnector(f"http://127.0.0.1:{port}/docs/", min_interval=0, sleep=lambda s: None).walk({}))
    with WebSite({"/kb/a": (html("A"), T0)}, sitemap="nested") as site:
        site.fail["/sitemaps/0.xml"] = 500
        with pytest.raises(SourceError, match="sitemap"):
            walk(site, "/sitemap.xml")
        site.fail["/robots.txt"] = 503
        with pytest.raises(SourceError, match=r"robots\.txt"):
            walk(site, "/kb/a", sleep=lambda s: None)


def test_a_start_page_robots_txt_forbids_is_refused() -> None:
    with docs_site() as site, pytest.raises(SourceError, match="does not allow"):
        walk(site, "/docs/private/x")


@pytest.mark.parametrize("bad", ["", "docs", "ftp://example.com/", "http://"])
def test_bad_addresses_are_refused_clearly(bad: str) -> None:
    with pytest.raises(SourceError, match="not a website address"):
        WebConnector(bad)


def test_urls_are_normalised() -> None:
    assert normalize_url("HTTP://Example.COM:80/a#frag") == "http://example.com/a"
    assert normalize_url("https://example.com:443") == "https://example.com/"
    assert normalize_url("../b?x=1", "https://example.com:8443/docs/a") == "https://example.com:8443/b?x=1"
    assert normalize_url("javascript:void(0)") is None


def test_a_start_url_that_answers_with_a_sitemap_is_read_as_one() -> None:
    pages = {"/kb/a": (html("A"), T0), "/help/b": (html("B"), T0)}
    with WebSite(pages) as site:
        urlset = "".join(f"<url><loc>{site.url(path)}</loc></url>" for path in pages)
        site.pages["/pages"] = (f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urlset}</urlset>', None)
        site.content_types["/pages"] = "application/xml"
        items = by_key(walk(site, "/pages"))
        assert set(items) == {site.url("/kb/a"), site.url("/help/b")}  # a given sitemap covers its whole host
        assert all(isinstance(item, Changed) and item.version == "" for item in items.values())


def test_robots_meta_and_x_robots_tag_are_obeyed() -> None:
    """A noindex page is no document (its links are still followed), a nofollow page's links are not followed, and
    an X-Robots-Tag header says the same for what has no <meta>."""
    noindex = html("Hub", ["/docs/a.html"]).replace("<head>", '<head><meta name="robots" content="noindex">')
    nofollow = html("Leaf", ["/docs/hidden.html"]).replace("<head>", '<head><meta name="ROBOTS" content="nofollow">')
    pages = {
        "/docs/": (html("Start", ["/docs/hub.html", "/docs/b.html"]), T0),
        "/docs/hub.html": (noindex, T0),
        "/docs/a.html": (html("A"), T0),
        "/docs/b.html": (nofollow, T0),
        "/docs/hidden.html": (html("Hidden"), T0),
    }
    with WebSite(pages) as site:
        keys = {item.meta.key for item in WebConnector(site.url("/docs/"), min_interval=0).walk({})}
        assert keys == {site.url("/docs/"), site.url("/docs/a.html"), site.url("/docs/b.html")}
        assert site.requests["/docs/hidden.html"] == 0
