"""A small website on 127.0.0.1 for the web connector's tests and the sync benchmark: pages from a dict, ETag and
Last-Modified with real 304s, robots.txt, a sitemap (flat or nested, with or without lastmod), and switches to
break one page (500 or any status) or throttle it once (429 with Retry-After). It counts every request by path,
and the 304s, so a test can say how much a sync cost.

    with WebSite({"/docs/": ("<html>...</html>", T0)}, robots="User-agent: *\\nDisallow: /docs/private/") as site:
        WebConnector(site.url("/docs/"), min_interval=0).walk({})
"""

from __future__ import annotations

import email.utils
import hashlib
import mimetypes
import threading
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"


class WebSite:
    """`pages`: path (with its query, if any) -> (body, last modified or None); edit it while the site runs.
    `sitemap`: None (404), "flat" (one <urlset>) or "nested" (a <sitemapindex> of <urlset>s of `per_sitemap`
    pages); it lists `sitemap_paths` (default: every page), with each page's lastmod when `sitemap_lastmod`.
    `fail`: path -> status to answer instead (500 for a broken page). `throttle_once`: path -> Retry-After
    seconds, answered with 429 on the next request only. `etags=False` leaves If-Modified-Since alone to work."""

    def __init__(
        self,
        pages: dict[str, tuple[str | bytes, datetime | None]] | None = None,
        *,
        robots: str | None = None,
        sitemap: str | None = None,
        sitemap_lastmod: bool = True,
        sitemap_paths: list[str] | None = None,
        per_sitemap: int = 2,
        content_types: dict[str, str] | None = None,
        etags: bool = True,
    ) -> None:
        self.pages = dict(pages or {})
        self.robots = robots
        self.sitemap = sitemap
        self.sitemap_lastmod = sitemap_lastmod
        self.sitemap_paths = sitemap_paths
        self.per_sitemap = per_sitemap
        self.content_types = dict(content_types or {})
        self.etags = etags
        self.fail: dict[str, int] = {}
        self.throttle_once: dict[str, float] = {}
        self.requests: Counter[str] = Counter()
        self.not_modified: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # lifecycle

    def __enter__(self) -> WebSite:
        handler = type("Handler", (_Handler,), {"site": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "use the site as a context manager"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def page_requests(self) -> int:
        """Requests for pages only (robots.txt and sitemaps left out)."""
        with self._lock:
            return sum(count for path, count in self.requests.items() if path in self.pages)

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()
            self.not_modified.clear()

    # answers

    def answer(self, request: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        path = request.path
        with self._lock:
            self.requests[path] += 1
            if path in self.fail:
                return self.fail[path], {"Content-Type": "text/plain"}, b"broken on purpose"
            if path in self.throttle_once:
                wait = self.throttle_once.pop(path)
                return 429, {"Retry-After": f"{wait:g}", "Content-Type": "text/plain"}, b"slow down"
        if path == "/robots.txt":
            if self.robots is None:
                return 404, {"Content-Type": "text/plain"}, b"no robots.txt"
            return 200, {"Content-Type": "text/plain"}, self.robots.encode()
        sitemap = self._sitemap(path)
        if sitemap is not None:
            return 200, {"Content-Type": "application/xml"}, sitemap.encode()
        page = self.pages.get(path)
        if page is None:
            return 404, {"Content-Type": "text/html"}, b"<html><title>Not found</title></html>"
        body = page[0].encode() if isinstance(page[0], str) else page[0]
        headers = {"Content-Type": self._content_type(path)}
        if self.etags:
            headers["ETag"] = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        if page[1] is not None:
            headers["Last-Modified"] = email.utils.format_datetime(page[1].astimezone(timezone.utc), usegmt=True)
        if self._not_modified(request, headers, page[1]):
            with self._lock:
                self.not_modified[path] += 1
            return 304, headers, b""
        return 200, headers, body

    def _not_modified(
        self, request: BaseHTTPRequestHandler, headers: dict[str, str], modified: datetime | None
    ) -> bool:
        """RFC 9110 13.1: If-None-Match decides when sent; If-Modified-Since only without it."""
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match is not None:
            tags = [tag.strip() for tag in if_none_match.split(",")]
            return "ETag" in headers and (headers["ETag"] in tags or "*" in tags)
        since = request.headers.get("If-Modified-Since")
        if since is None or modified is None:
            return False
        try:
            since_moment = email.utils.parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
        return modified.replace(microsecond=0) <= since_moment

    def _content_type(self, path: str) -> str:
        if path in self.content_types:
            return self.content_types[path]
        guessed = mimetypes.guess_type(path.split("?", 1)[0])[0]
        return guessed or "text/html; charset=utf-8"

    def _sitemap(self, path: str) -> str | None:
        if self.sitemap is None:
            return None
        paths = self.sitemap_paths if self.sitemap_paths is not None else list(self.pages)
        if self.sitemap == "flat":
            return self._urlset(paths) if path == "/sitemap.xml" else None
        chunks = [paths[i : i + self.per_sitemap] for i in range(0, len(paths), self.per_sitemap)]
        if path == "/sitemap.xml":
            entries = "".join(
                f"<sitemap><loc>{self.url(f'/sitemaps/{n}.xml')}</loc></sitemap>" for n in range(len(chunks))
            )
            return f'<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="{SITEMAP_NS}">{entries}</sitemapindex>'
        for n, chunk in enumerate(chunks):
            if path == f"/sitemaps/{n}.xml":
                return self._urlset(chunk)
        return None

    def _urlset(self, paths: list[str]) -> str:
        entries = []
        for path in paths:
            modified = self.pages[path][1] if path in self.pages else None
            lastmod = f"<lastmod>{modified.isoformat()}</lastmod>" if self.sitemap_lastmod and modified else ""
            entries.append(f"<url><loc>{escape(self.url(path))}</loc>{lastmod}</url>")
        return f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="{SITEMAP_NS}">{"".join(entries)}</urlset>'


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real sites serve
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall each
    site: WebSite

    def do_GET(self) -> None:
        status, headers, body = self.site.answer(self)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 304:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests read the counters instead."""


def html(title: str, links: Sequence[str] = (), *, canonical: str = "", body: str = "") -> str:
    """A page with a title, links and an optional canonical link."""
    head = f"<title>{escape(title)}</title>"
    if canonical:
        head += f'<link rel="canonical" href="{escape(canonical)}">'
    anchors = "".join(f'<li><a href="{escape(link)}">{escape(link)}</a></li>' for link in links)
    body = f"<h1>{escape(title)}</h1><p>{body}</p><ul>{anchors}</ul>"
    return f"<!doctype html><html><head>{head}</head><body>{body}</body></html>"
