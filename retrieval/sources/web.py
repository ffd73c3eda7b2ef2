"""Websites as a source: read the site's sitemap when it has one, else crawl from the start URL (same host, under the
start URL's folder, breadth first), as robots.txt allows and at its pace. Each page is fetched with the validators
of the last sync, so a re-sync of an unchanged site is mostly 304s; a sitemap `lastmod` equal to the stored version
skips the request altogether. Pages are only found, fetched and described here: their main content is extracted by
the loader (`retrieval.loaders.parse_html`)."""

from __future__ import annotations

import codecs
import dataclasses
import email.utils
import gzip
import io
import posixpath
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

import httpx
import lxml.etree
import lxml.html

from retrieval.sources.base import Changed, Connector, DocumentMeta, Failed, Item, KnownDocument, SourceError, Unchanged
from retrieval.sources.http import USER_AGENT, SourceHttp

HTML_TYPES = ("text/html", "application/xhtml+xml")
DOCUMENT_TYPES = {
    "application/pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "text/markdown": ".md",
    "text/x-markdown": ".md",
    "text/plain": ".txt",
}
# Servers often send files as octet-stream (or Markdown as text/plain): the URL's suffix says what they are.
FILE_SUFFIXES = {".pdf": ".pdf", ".docx": ".docx", ".pptx": ".pptx", ".xlsx": ".xlsx", ".md": ".md"}
FILE_SUFFIXES |= {".markdown": ".md", ".txt": ".txt"}
GENERIC_TYPES = ("", "application/octet-stream", "binary/octet-stream")
# Links never worth a request: no loader reads them, whatever the server would say.
SKIPPED_SUFFIXES = frozenset(
    ".png .jpg .jpeg .gif .webp .svg .ico .bmp .tif .tiff .css .js .mjs .map .json .woff .woff2 .ttf .eot .otf "
    ".zip .gz .tgz .bz2 .xz .7z .rar .tar .dmg .exe .msi .pkg .deb .rpm .apk .iso .mp3 .mp4 .m4a .wav .ogg .webm "
    ".mov .avi .mkv .doc .ppt .xls .rss .atom".split()
)
MAX_SITEMAP_DEPTH = 3  # the protocol nests one level (an index of sitemaps); a little more is tolerated
MAX_SITEMAP_BYTES = 64 * 1024 * 1024  # the protocol's 50 MB uncompressed, with room: a gzip bomb stops here
CLIENT_ERRORS = tuple(status for status in range(400, 500) if status != 429)  # "not there": 429 is retried
_XML = lxml.etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


@dataclass(frozen=True)
class SitemapEntry:
    url: str  # normalised
    lastmod: str = ""


@dataclass(frozen=True)
class Page:
    """What the connector needs from an HTML page: its title, canonical URL and links (normalised, absolute)."""

    title: str
    canonical: str
    links: list[str]
    index: bool = True  # <meta name="robots" content="noindex">: the page is not a document here
    follow: bool = True  # "nofollow": its links are not followed


class WebConnector(Connector):
    """One website, or the part of it under the start URL's folder.

    Args:
        url: the start page (crawled from) or a sitemap (a URL ending in .xml, or one that answers with a sitemap).
        max_pages: most documents one walk yields; the rest of the site is not fetched.
        min_interval: seconds between the starts of two requests; a larger robots.txt Crawl-delay wins.
        sleep: how waits are done (tests pass a recorder).
        user_agent: the User-Agent sent, and the name robots.txt rules are matched against.
        timeout: seconds for one request.
    """

    kind = "web"

    def __init__(
        self,
        url: str,
        *,
        max_pages: int = 2000,
        min_interval: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        user_agent: str = USER_AGENT,
        timeout: float = 30.0,
    ) -> None:
        start = normalize_url(url.strip()) if isinstance(url, str) else None
        if start is None:
            raise SourceError(f"not a website address: {url!r} (give an http:// or https:// URL)")
        if max_pages < 1:
            raise SourceError(f"max_pages must be at least 1, not {max_pages}")
        if min_interval < 0:
            raise SourceError(f"min_interval must be 0 or more seconds, not {min_interval}")
        parts = urlsplit(start)
        self.start = start
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.host = parts.netloc
        self.folder = _folder(parts.path)
        self.max_pages = max_pages
        self.min_interval = min_interval
        self.user_agent = user_agent
        self.http = SourceHttp(
            headers={"User-Agent": user_agent},
            what=f"the website {parts.netloc}",
            timeout=timeout,
            min_interval=min_interval,
            sleep=sleep,
        )
        self.robots = RobotFileParser()

    def walk(self, known: Mapping[str, KnownDocument]) -> Iterator[Item]:
        self._read_robots()
        if not self._allowed(self.start):
            raise SourceError(f"robots.txt of {self.host} does not allow {self.start}: there is nothing to sync")
        by_url = _by_url(known)
        if _looks_like_sitemap(self.start):
            yield from self._walk_sitemap(self._read_sitemaps([self.start], scoped=False), by_url)
            return
        listed = self._discover_sitemaps()
        entries = self._read_sitemaps(list(listed), scoped=True, fetched=listed) if listed else []
        if entries:  # a site-wide sitemap with nothing under the start folder: crawl instead of syncing nothing
            yield from self._walk_sitemap(entries, by_url)
            return
        first = self.http.get(self.start, known=by_url.get(self.start))  # failing here fails the sync
        if first.status_code == 200 and _suffix(first, self.start) != ".html":
            parsed = parse_sitemap(first.content)
            if parsed is not None:  # the start URL is a sitemap without the .xml
                entries = self._read_sitemaps([self.start], scoped=False, fetched={self.start: parsed})
                yield from self._walk_sitemap(entries, by_url)
                return
        yield from self._crawl(first, by_url)

    def close(self) -> None:
        self.http.close()

    # robots.txt and sitemaps

    def _read_robots(self) -> None:
        """RFC 9309: a robots.txt that is not there (4xx) allows everything; one that cannot be reached (5xx,
        network) disallows everything, so the sync fails instead of crawling blind."""
        url = f"{self.origin}/robots.txt"
        try:
            response = self.http.get(url, ok=(200, *CLIENT_ERRORS))
        except SourceError as exc:
            raise SourceError(f"cannot read {url}, so the site is not crawled: {exc}") from exc
        self.robots = RobotFileParser(url)
        self.robots.parse(response.text.splitlines() if response.status_code == 200 else [])
        delay = self.robots.crawl_delay(self.user_agent)
        self.http.min_interval = max(self.min_interval, float(delay or 0))

    def _allowed(self, url: str) -> bool:
        return self.robots.can_fetch(self.user_agent, url)

    def _discover_sitemaps(self) -> dict[str, tuple[str, list[tuple[str, str]]] | None]:
        """The sitemaps robots.txt lists (on this host), else /sitemap.xml when it is one; {} when there is none."""
        listed = [normalize_url(url) for url in self.robots.site_maps() or ()]
        same_host = [url for url in listed if url is not None and self._same_site(url)]
        if same_host:
            return dict.fromkeys(same_host)
        probe = f"{self.origin}/sitemap.xml"
        try:
            response = self.http.get(probe, ok=(200, *CLIENT_ERRORS))
        except SourceError as exc:
            raise SourceError(f"cannot read the sitemap {probe}: {exc}") from exc
        parsed = parse_sitemap(response.content) if response.status_code == 200 else None
        return {probe: parsed} if parsed is not None else {}

    def _read_sitemaps(
        self,
        urls: list[str],
        *,
        scoped: bool,
        fetched: Mapping[str, tuple[str, list[tuple[str, str]]] | None] | None = None,
    ) -> list[SitemapEntry]:
        """Every page the sitemaps list, nested indexes followed; any sitemap failing fails the sync. A given sitemap
        is read for its whole host, a discovered one only under the start folder."""
        entries: dict[str, SitemapEntry] = {}
        queue = deque((url, 0) for url in urls)
        seen: set[str] = set()
        while queue:
            url, depth = queue.popleft()
            if url in seen:
                continue
            seen.add(url)
            kind, items = (fetched or {}).get(url) or self._fetch_sitemap(url)
            for loc, lastmod in items:
                target = normalize_url(loc, url)
                if target is None or not self._same_site(target):
                    continue
                if kind == "sitemapindex":
                    if depth >= MAX_SITEMAP_DEPTH:
                        raise SourceError(f"the sitemap {url} nests sitemaps more than {MAX_SITEMAP_DEPTH} deep")
                    queue.append((target, depth + 1))
                elif (not scoped or self._in_scope(target)) and target not in entries:
                    entries[target] = SitemapEntry(target, lastmod)
        if not entries and not scoped:
            raise SourceError(f"the sitemap {urls[0]} lists no pages on {self.host}")
        return list(entries.values())

    def _fetch_sitemap(self, url: str) -> tuple[str, list[tuple[str, str]]]:
        try:
            response = self.http.get(url)
        except SourceError as exc:
            raise SourceError(f"cannot read the sitemap {url}: {exc}") from exc
        parsed = parse_sitemap(response.content)
        if parsed is None:
            raise SourceError(f"{url} is not a sitemap (no <urlset> or <sitemapindex>)")
        return parsed

    # walking

    def _walk_sitemap(self, entries: list[SitemapEntry], by_url: Mapping[str, KnownDocument]) -> Iterator[Item]:
        keys: set[str] = set()
        for entry in entries:
            if len(keys) >= self.max_pages:
                return
            if not self._allowed(entry.url):
                continue
            doc = by_url.get(entry.url)
            if doc is not None and entry.lastmod and doc.version == entry.lastmod:
                item: Item | None = Unchanged(doc.key)
            else:
                response = self._request(entry.url, doc, required=entry.url == self.start)
                item = response if isinstance(response, Failed) else self._describe(entry.url, doc, response)[0]
                if isinstance(item, Changed) and entry.lastmod:
                    item = _with_lastmod(item, entry.lastmod)
            if item is not None and _key(item) not in keys:
                keys.add(_key(item))
                yield item

    def _crawl(self, first: httpx.Response, by_url: Mapping[str, KnownDocument]) -> Iterator[Item]:
        queue, queued, keys = deque([self.start]), {self.start}, set()
        while queue and len(keys) < self.max_pages:
            url = queue.popleft()
            if url in keys:  # a canonical URL already yielded through another address
                continue
            doc = by_url.get(url)
            if url == self.start:
                response: httpx.Response | Failed = first
            elif self._allowed(url):
                response = self._request(url, doc)
            else:
                continue
            item, links = (response, []) if isinstance(response, Failed) else self._describe(url, doc, response)
            for link in links:
                if link not in queued:
                    queued.add(link)
                    queue.append(link)
            if item is not None and _key(item) not in keys:
                keys.add(_key(item))
                queued.add(_key(item))  # the canonical URL is this document: not fetched again as a link
                yield item

    def _request(self, url: str, doc: KnownDocument | None, *, required: bool = False) -> httpx.Response | Failed:
        """The page, conditionally when it is known; a failure is the page's (Failed), or the sync's for the start
        URL (SourceError, SourceAuthError)."""
        try:
            return self.http.get(url, known=doc)
        except SourceError as exc:
            if required:
                raise
            return Failed(doc.key if doc else url, str(exc), url)

    def _describe(
        self, url: str, doc: KnownDocument | None, response: httpx.Response
    ) -> tuple[Unchanged | Changed | None, list[str]]:
        """The item for a fetched page and the in-scope links to follow; None for what is not a document here
        (an image, a redirect off the site)."""
        if response.status_code == 304 and doc is not None:
            links = [link for link in (doc.extra or {}).get("links", ()) if isinstance(link, str)]
            return Unchanged(
                doc.key, etag=_header(response, "ETag"), last_modified=_header(response, "Last-Modified")
            ), links
        final = normalize_url(str(response.url))
        if final is None or not self._same_site(final):
            return None, []
        suffix = _suffix(response, final)
        if suffix is None:
            return None, []
        key, title, links = final, _file_title(final), []
        header_rules = robots_rules(_header(response, "X-Robots-Tag"))
        if suffix == ".html":
            page = parse_page(response.content, final, response.charset_encoding)
            title = page.title
            if page.canonical and self._same_site(page.canonical):
                key = page.canonical
            if page.follow and "nofollow" not in header_rules:
                links = [link for link in page.links if self._in_scope(link) and not _skipped(link)]
            if not page.index:
                return None, links
        if "noindex" in header_rules:
            return None, links
        last_modified = _header(response, "Last-Modified")
        extra: dict[str, object] = {"links": links}
        if url != key:
            extra["fetched"] = url  # found again at this address next time, before its canonical is known
        meta = DocumentMeta(
            key=key, url=key, title=title, section=url_folders(key), updated=parse_http_date(last_modified)
        )
        item = Changed(
            meta,
            content=response.content,
            name=document_name(key, suffix),
            etag=_header(response, "ETag"),
            last_modified=last_modified,
            extra=extra,
        )
        return item, links

    def _same_site(self, url: str) -> bool:
        """Same host; http and https both count, since sites redirect one to the other."""
        return urlsplit(url).netloc == self.host

    def _in_scope(self, url: str) -> bool:
        path = urlsplit(url).path
        return self._same_site(url) and (path.startswith(self.folder) or path == self.folder.rstrip("/"))


def normalize_url(url: str, base: str | None = None) -> str | None:
    """The one spelling of a page's address: absolute, no fragment, scheme and host lower-case, the default port
    dropped, an empty path as "/". None for what is not an http(s) URL."""
    try:
        parts = urlsplit(urljoin(base, url) if base else url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host:
        return None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        netloc += f":{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def parse_sitemap(content: bytes) -> tuple[str, list[tuple[str, str]]] | None:
    """("urlset" or "sitemapindex", [(loc, lastmod)]) from a sitemap (gzipped or not); None if it is not one."""
    if content[:2] == b"\x1f\x8b":
        try:
            content = gzip.GzipFile(fileobj=io.BytesIO(content)).read(MAX_SITEMAP_BYTES)
        except (OSError, EOFError):
            return None
    try:
        root = lxml.etree.fromstring(content, parser=_XML)
    except (lxml.etree.XMLSyntaxError, ValueError):
        return None
    if not isinstance(root.tag, str):
        return None
    kind = lxml.etree.QName(root).localname
    if kind not in ("urlset", "sitemapindex"):
        return None
    child = "{*}url" if kind == "urlset" else "{*}sitemap"
    items = [
        ((node.findtext("{*}loc") or "").strip(), (node.findtext("{*}lastmod") or "").strip())
        for node in root.iterchildren(child)
    ]
    return kind, [(loc, lastmod) for loc, lastmod in items if loc]


def parse_page(content: bytes, url: str, charset: str | None = None) -> Page:
    """Title, canonical URL and links of an HTML page, resolved against its <base href> or its own URL."""
    try:
        tree = lxml.html.document_fromstring(content, parser=lxml.html.HTMLParser(encoding=_charset(content, charset)))
    except (lxml.etree.ParserError, ValueError):
        return Page("", "", [])
    base_href = tree.xpath("//base/@href")
    base = normalize_url(str(base_href[0]).strip(), url) if base_href else None
    base = base or url
    title = " ".join((tree.findtext(".//title") or "").split())
    canonical = ""
    for link in tree.xpath("//link[@rel and @href]"):
        if "canonical" in str(link.get("rel")).lower().split():
            canonical = normalize_url(str(link.get("href")).strip(), base) or ""
            break
    hrefs = (normalize_url(str(href).strip(), base) for href in tree.xpath("//a/@href | //area/@href"))
    robots_meta = tree.xpath("//meta[translate(@name, 'ROBTS', 'robts')='robots']/@content")
    rules = robots_rules(",".join(str(content) for content in robots_meta))
    links = _unique(href for href in hrefs if href)
    return Page(title, canonical, links, index="noindex" not in rules, follow="nofollow" not in rules)


def robots_rules(content: str) -> set[str]:
    """The directives of a robots meta tag or an X-Robots-Tag header ("none" is noindex and nofollow)."""
    rules = {part.strip().lower() for part in content.split(",") if part.strip()}
    return rules | {"noindex", "nofollow"} if "none" in rules else rules


def document_name(url: str, suffix: str) -> str:
    """A file name for the loader, ending in the suffix that says the format ("pricing.html", "guide.pdf")."""
    segment = unquote(posixpath.basename(urlsplit(url).path.rstrip("/"))).replace("\\", "_") or "index"
    return segment if segment.lower().endswith(suffix) else segment + suffix


def url_folders(url: str) -> tuple[str, ...]:
    """The folders of a URL's path, as a document's section: /docs/guides/setup.html -> ("docs", "guides")."""
    return tuple(unquote(part) for part in urlsplit(url).path.split("/")[1:-1] if part)


def parse_lastmod(value: str) -> datetime | None:
    """A sitemap's W3C datetime (a date, or a date and time with a zone) as an aware datetime; None if unreadable."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def parse_http_date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _folder(path: str) -> str:
    """The folder a start path stands for: /docs/ and /docs are /docs/; /docs/index.html is /docs/."""
    last = path.rsplit("/", 1)[-1]
    if "." in last:
        return path[: len(path) - len(last)] or "/"
    return path.rstrip("/") + "/"


def _looks_like_sitemap(url: str) -> bool:
    path = urlsplit(url).path.lower()
    return path.endswith((".xml", ".xml.gz"))


def _suffix(response: httpx.Response, url: str) -> str | None:
    """The loader suffix of a response by its Content-Type (or its URL's suffix when the type says nothing);
    None for what no loader reads."""
    mime = _header(response, "Content-Type").split(";")[0].strip().lower()
    url_suffix = posixpath.splitext(urlsplit(url).path)[1].lower()
    if mime in HTML_TYPES:
        return ".html"
    if mime == "text/plain" and url_suffix in (".md", ".markdown"):
        return ".md"
    if mime in DOCUMENT_TYPES:
        return DOCUMENT_TYPES[mime]
    if mime in GENERIC_TYPES:
        return FILE_SUFFIXES.get(url_suffix)
    return None


def _with_lastmod(item: Changed, lastmod: str) -> Changed:
    """A page listed in a sitemap: its lastmod is its version, and its update time when readable."""
    meta = dataclasses.replace(item.meta, updated=parse_lastmod(lastmod) or item.meta.updated)
    return dataclasses.replace(item, meta=meta, version=lastmod)


def _by_url(known: Mapping[str, KnownDocument]) -> dict[str, KnownDocument]:
    """Known documents by the address they are fetched at: their key, or the URL that led to their canonical."""
    by_url: dict[str, KnownDocument] = {}
    for doc in known.values():
        fetched = (doc.extra or {}).get("fetched")
        if isinstance(fetched, str):
            by_url.setdefault(fetched, doc)
    by_url.update({doc.key: doc for doc in known.values()})
    return by_url


def _charset(content: bytes, declared: str | None) -> str:
    """The header's charset, else the page's <meta charset>, else UTF-8 (what lxml would not assume)."""
    found = _META_CHARSET.search(content[:4096])
    for name in (declared, found.group(1).decode("ascii") if found else None):
        if name:
            try:
                return codecs.lookup(name).name
            except LookupError:
                continue
    return "utf-8"


def _key(item: Item) -> str:
    return item.meta.key if isinstance(item, Changed) else item.key


def _header(response: httpx.Response, name: str) -> str:
    return response.headers.get(name, "")


def _file_title(url: str) -> str:
    return unquote(posixpath.basename(urlsplit(url).path.rstrip("/")))


def _skipped(url: str) -> bool:
    return posixpath.splitext(urlsplit(url).path)[1].lower() in SKIPPED_SUFFIXES


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))
