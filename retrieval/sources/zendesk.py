"""Zendesk Help Center articles as a source: the article list, with sections and categories for where each sits.

The connector reads the full article list (cursor-paginated) on every sync rather than the incremental export
(`/api/v2/help_center/incremental/articles.json?start_time=`): the export says what changed since a time but not
what was deleted or unpublished, and the sync engine prunes exactly the documents a complete walk no longer yields.
A full list costs one request per 100 articles and carries each body, so unchanged articles cost nothing more.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from retrieval.sources.base import (
    Changed,
    Connector,
    DocumentMeta,
    Item,
    KnownDocument,
    SourceError,
    Unchanged,
    parse_timestamp,
)
from retrieval.sources.http import FetchError, SourceHttp, json_object

MAX_PAGE_SIZE = 100  # the most `page[size]` Zendesk accepts on Help Center lists


class ZendeskConnector(Connector):
    """Articles of one Help Center (`url`, e.g. https://acme.zendesk.com), in `locale` or the default locale.

    Args:
        url: the Zendesk account's address (a brand's own subdomain for a brand's help center).
        email: the agent the API token belongs to; with `token` this is Basic auth "{email}/token:{token}".
        token: an API token (with `email`) or an OAuth access token (without); None reads as an anonymous user,
            who sees only public articles.
        token_env: the environment variable the token came from, named when Zendesk refuses it.
        locale: a Help Center locale ("en-us", "de"); None lists the default locale.
        sleep: how waits are made (tests record them instead).
        page_size: articles per listing page (at most 100).
    """

    kind = "zendesk"

    def __init__(
        self,
        url: str,
        *,
        email: str | None,
        token: str | None,
        token_env: str,
        locale: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        page_size: int = MAX_PAGE_SIZE,
    ) -> None:
        url = url.strip().rstrip("/")
        if not url.startswith(("https://", "http://")):
            raise SourceError(f"Zendesk URL must start with https:// (like https://acme.zendesk.com), got {url!r}")
        self.url = url
        self.locale = locale.strip().strip("/") if locale else None
        self.page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        auth: tuple[str, str] | None = None
        headers = {"Accept": "application/json"}
        if token and email:
            auth = (f"{email}/token", token)
        elif token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = SourceHttp(
            base_url=url, headers=headers, auth=auth, token_env=token_env, what=f"Zendesk ({url})", sleep=sleep
        )
        self._paths: dict[int, tuple[str, ...]] | None = None

    def walk(self, known: Mapping[str, KnownDocument]) -> Iterator[Item]:
        """Every published article: Unchanged when its `updated_at` is the version the last sync kept, else
        Changed with its body; drafts are left out (so a published article turned draft is pruned)."""
        self._paths = None  # sections and categories as they are now, read again each walk
        for article in self._list("articles"):
            if article.get("draft"):
                continue
            key = str(article["id"])
            version = str(article.get("updated_at") or "")
            previous = known.get(key)
            if version and previous is not None and previous.version == version:
                yield Unchanged(key)
                continue
            yield self._changed(article, key, version)

    def _changed(self, article: Mapping[str, Any], key: str, version: str) -> Changed:
        title = str(article.get("title") or article.get("name") or "")
        meta = DocumentMeta(
            key=key,
            url=str(article.get("html_url") or ""),
            title=title,
            section=self._section_path(article.get("section_id")),
            updated=parse_timestamp(article.get("edited_at") or article.get("updated_at")),
            author=str(article["author_id"]) if article.get("author_id") is not None else "",
            tags=tuple(str(label) for label in article.get("label_names") or ()),
        )
        return Changed(
            meta=meta,
            content=_article_html(title, str(article.get("body") or "")),
            name="article.html",
            version=version,
        )

    def _section_path(self, section_id: Any) -> tuple[str, ...]:
        """Category > parent sections > section, from the section and category lists (read once, when the first
        changed article needs them: a sync where nothing changed never asks)."""
        if self._paths is None:
            self._paths = self._build_paths()
        return self._paths.get(section_id, ()) if isinstance(section_id, int) else ()

    def _build_paths(self) -> dict[int, tuple[str, ...]]:
        categories = {c["id"]: str(c.get("name") or "") for c in self._list("categories")}
        sections = {s["id"]: s for s in self._list("sections")}
        paths: dict[int, tuple[str, ...]] = {}
        for section_id in sections:
            names: list[str] = []
            current: Mapping[str, Any] | None = sections[section_id]
            seen: set[int] = set()
            while current is not None and current["id"] not in seen:
                seen.add(current["id"])
                names.append(str(current.get("name") or ""))
                parent = current.get("parent_section_id")
                if parent is None:
                    category = categories.get(current.get("category_id"))
                    if category:
                        names.append(category)
                    break
                current = sections.get(parent)
            paths[section_id] = tuple(reversed(names))
        return paths

    def _list(self, what: str) -> Iterator[dict[str, Any]]:
        """One Help Center list, page by page through `links.next` while `meta.has_more`."""
        prefix = f"/api/v2/help_center/{self.locale}" if self.locale else "/api/v2/help_center"
        url: str = f"{prefix}/{what}.json"
        params: dict[str, Any] | None = {"page[size]": self.page_size}
        seen: set[str] = set()
        while True:
            payload = self._get_json(url, params, what)
            items = payload.get(what)
            if not isinstance(items, list):
                raise SourceError(f"Zendesk ({self.url}): the {what} list has no {what!r} array")
            yield from (item for item in items if isinstance(item, dict) and "id" in item)
            meta, links = payload.get("meta") or {}, payload.get("links") or {}
            next_url = links.get("next")
            if not meta.get("has_more") or not next_url:
                return
            if urlsplit(next_url).netloc != urlsplit(self.url).netloc:
                raise SourceError(f"Zendesk ({self.url}): the {what} list points to another host ({next_url})")
            if next_url in seen:
                raise SourceError(f"Zendesk ({self.url}): the {what} list repeats a page ({next_url})")
            seen.add(next_url)
            url, params = next_url, None  # the next link carries page[size] and page[after]

    def _get_json(self, url: str, params: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
        try:
            response = self.http.get(url, params=params)
        except FetchError as exc:
            raise SourceError(f"cannot list Zendesk {what}: {exc}") from exc
        return json_object(response, f"Zendesk ({self.url}), asked for the {what} list,")

    def close(self) -> None:
        self.http.close()


def _article_html(title: str, body: str) -> str:
    """The body as a small HTML document: the loader takes the title from <title> and drops the repeating <h1>."""
    escaped = html.escape(title)
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{escaped}</title></head>\n'
        f"<body><article><h1>{escaped}</h1>\n{body}\n</article></body></html>\n"
    )
