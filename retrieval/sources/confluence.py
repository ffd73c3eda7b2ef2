"""Confluence spaces through the REST API (v1 content API, Cloud and Data Center alike).

The listing asks only for each page's version, ancestors and labels; bodies are fetched one page at a time and only
for pages whose version number moved. Bodies are most of the bytes, Confluence caps `limit` lower when a body is
expanded, and in a usual sync almost every page is unchanged, so this costs one request per changed page and saves
downloading the whole space every time.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urljoin

from retrieval.sources.base import (
    Changed,
    Connector,
    DocumentMeta,
    Failed,
    Item,
    KnownDocument,
    SourceError,
    Unchanged,
    parse_timestamp,
)
from retrieval.sources.http import FetchError, SourceHttp, json_object

PAGE_SIZE = 50  # pages per listing request (metadata only; Confluence allows more, but answers slower)
LIST_EXPAND = "version,ancestors,metadata.labels"
BODY_EXPAND = "body.storage,version"


class ConfluenceConnector(Connector):
    """Pages of the given spaces. `url` is the site's base including its context path (Cloud:
    `https://example.atlassian.net/wiki`). With `email`, the token is an Atlassian API token sent as Basic auth;
    without, it is a personal access token sent as Bearer (Data Center); no token reads anonymously. `token_env` is
    the variable the token came from, named when Confluence refuses it."""

    kind = "confluence"

    def __init__(
        self,
        url: str,
        spaces: Sequence[str],
        *,
        email: str | None,
        token: str | None,
        token_env: str,
        sleep: Callable[[float], None] = time.sleep,
        page_size: int = PAGE_SIZE,
    ) -> None:
        if not spaces:
            raise SourceError("Confluence: name at least one space key")
        self.url = url.rstrip("/")
        self.spaces = tuple(spaces)
        self.page_size = page_size
        headers: dict[str, str] = {"Accept": "application/json"}
        auth: tuple[str, str] | None = None
        if token and email:
            auth = (email, token)
        elif token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = SourceHttp(headers=headers, auth=auth, token_env=token_env, what="Confluence", sleep=sleep)

    def walk(self, known: Mapping[str, KnownDocument]) -> Iterator[Item]:
        for space_key in self.spaces:
            space_name = self._space_name(space_key)
            for page, base in self._list_pages(space_key):
                yield self._item(page, base, space_name, known)

    def close(self) -> None:
        self.http.close()

    def _space_name(self, key: str) -> str:
        """The space's name, which also proves it exists: a listing of a mistyped key is empty, not an error, and
        an empty walk would prune every page the space had."""
        try:
            data = json_object(self.http.get(f"{self.url}/rest/api/space/{key}"), f"Confluence: space {key!r}")
        except FetchError as exc:
            if exc.status == 404:
                raise SourceError(f"Confluence: no space {key!r} at {self.url} (or the token cannot see it)") from exc
            raise
        return str(data.get("name") or key)

    def _list_pages(self, space_key: str) -> Iterator[tuple[dict[str, Any], str]]:
        """Every current page of the space with its site base, following `_links.next` (Cloud puts an opaque
        cursor there, so the next `start` cannot be computed)."""
        url: str | None = f"{self.url}/rest/api/content"
        params: dict[str, Any] | None = {
            "spaceKey": space_key,
            "type": "page",
            "status": "current",
            "expand": LIST_EXPAND,
            "start": 0,
            "limit": self.page_size,
        }
        while url:
            data = json_object(self.http.get(url, params=params), f"Confluence: the listing of space {space_key!r}")
            links = data.get("_links") or {}
            base = str(links.get("base") or self.url)
            results = data.get("results")
            if not isinstance(results, list):
                raise SourceError(f"Confluence: the listing of space {space_key!r} has no results")
            for page in results:
                if isinstance(page, dict) and page.get("id"):
                    yield page, base
            following = links.get("next")
            url = _absolute(base, str(following)) if following and results else None
            params = None

    def _item(self, page: dict[str, Any], base: str, space_name: str, known: Mapping[str, KnownDocument]) -> Item:
        key = str(page["id"])
        version = str((page.get("version") or {}).get("number") or "")
        previous = known.get(key)
        if version and previous is not None and previous.version == version:
            return Unchanged(key)
        webui = str((page.get("_links") or {}).get("webui") or "")
        url = _absolute(base, webui) if webui else f"{self.url}/pages/viewpage.action?pageId={key}"
        try:
            response = self.http.get(f"{self.url}/rest/api/content/{key}", params={"expand": BODY_EXPAND})
        except FetchError as exc:  # one page failing is reported; a refused token (SourceAuthError) stops the walk
            return Failed(key, str(exc), url)
        try:
            full = json_object(response, f"Confluence: page {key}")
            storage = full["body"]["storage"]["value"]
        except (KeyError, TypeError, SourceError):
            return Failed(key, "Confluence: the page came back without its storage-format body", url)
        latest = full.get("version") or page.get("version") or {}
        title = str(full.get("title") or page.get("title") or "")
        ancestors = [str(a.get("title") or "") for a in page.get("ancestors") or [] if isinstance(a, dict)]
        labels = ((page.get("metadata") or {}).get("labels") or {}).get("results") or []
        meta = DocumentMeta(
            key=key,
            url=url,
            title=title,
            section=tuple(s for s in (space_name, *ancestors) if s),
            updated=parse_timestamp(latest.get("when")),
            author=str((latest.get("by") or {}).get("displayName") or ""),
            tags=tuple(str(label["name"]) for label in labels if isinstance(label, dict) and label.get("name")),
        )
        return Changed(meta, storage_html(title, str(storage)), "page.html", version=str(latest.get("number") or ""))


def storage_html(title: str, storage: str) -> str:
    """A page's storage-format XHTML as an HTML document. Code macros keep their code in CDATA sections, which an
    HTML parser drops as comments: they become escaped text in a <pre>."""
    body = _CODE_MACRO.sub(lambda m: f"<pre><code>{html.escape(m.group(1))}</code></pre>", storage)
    body = _CDATA.sub(lambda m: html.escape(m.group(1)), body)
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>\n'
        f"<body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )


_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.S)
_CODE_MACRO = re.compile(
    r'<ac:structured-macro[^>]*ac:name="(?:code|noformat)"[^>]*>.*?'
    r"<ac:plain-text-body><!\[CDATA\[(.*?)\]\]></ac:plain-text-body>\s*</ac:structured-macro>",
    re.S,
)


def _absolute(base: str, link: str) -> str:
    """A `_links` entry (relative to the site base, context path included) as a full URL."""
    if link.startswith(("http://", "https://")):
        return link
    return base.rstrip("/") + "/" + link.lstrip("/") if link.startswith("/") else urljoin(base + "/", link)
