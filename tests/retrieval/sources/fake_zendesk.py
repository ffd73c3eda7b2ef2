"""A local HTTP server that plays Zendesk's Help Center API (articles, sections, categories) the way the public
reference describes it: cursor pagination (`page[size]`, `page[after]`, `meta.has_more`, `links.next`), offset
pagination without `page[size]` (`page`, `per_page`, `next_page`), API-token Basic auth ("{email}/token:{token}")
or an OAuth Bearer token, and `{"error": ...}` bodies. It records every request and can be told to fail some."""

from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

_LIST = re.compile(
    r"^/api/v2/help_center(?:/(?P<locale>[a-z]{2}(?:-[a-z]{2})?))?/(?P<what>articles|sections|categories)\.json$"
)
_CLOCK_START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


@dataclass
class Logged:
    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None


@dataclass
class Fault:
    path: str
    status: int
    headers: dict[str, str]
    times: int
    cursor_only: bool  # only pages after the first (a request carrying page[after])


@dataclass
class FakeZendesk:
    email: str = "agent@acme.test"
    token: str = "zd-api-token"
    oauth_token: str = "zd-oauth-token"
    categories: dict[int, dict[str, Any]] = field(default_factory=dict)
    sections: dict[int, dict[str, Any]] = field(default_factory=dict)
    articles: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[Logged] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    _ticks: int = 0

    def __post_init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._handle(self)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- the help center's content -------------------------------------------------------------------------------

    def _now(self) -> str:
        self._ticks += 1
        return (_CLOCK_START + timedelta(minutes=self._ticks)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def add_category(self, category_id: int, name: str) -> None:
        now = self._now()
        self.categories[category_id] = {
            "id": category_id,
            "url": f"{self.url}/api/v2/help_center/en-us/categories/{category_id}.json",
            "html_url": f"{self.url}/hc/en-us/categories/{category_id}",
            "position": 0,
            "created_at": now,
            "updated_at": now,
            "name": name,
            "description": "",
            "locale": "en-us",
            "source_locale": "en-us",
            "outdated": False,
        }

    def add_section(self, section_id: int, name: str, category_id: int, parent_section_id: int | None = None) -> None:
        now = self._now()
        self.sections[section_id] = {
            "id": section_id,
            "url": f"{self.url}/api/v2/help_center/en-us/sections/{section_id}.json",
            "html_url": f"{self.url}/hc/en-us/sections/{section_id}",
            "category_id": category_id,
            "position": 0,
            "sorting": "manual",
            "created_at": now,
            "updated_at": now,
            "name": name,
            "description": "",
            "locale": "en-us",
            "source_locale": "en-us",
            "outdated": False,
            "parent_section_id": parent_section_id,
            "theme_template": "section_page",
        }

    def add_article(
        self,
        article_id: int,
        title: str,
        body: str,
        section_id: int,
        *,
        labels: tuple[str, ...] = (),
        author_id: int = 3001,
        draft: bool = False,
        locale: str = "en-us",
    ) -> None:
        now = self._now()
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
        self.articles[article_id] = {
            "id": article_id,
            "url": f"{self.url}/api/v2/help_center/{locale}/articles/{article_id}.json",
            "html_url": f"{self.url}/hc/{locale}/articles/{article_id}-{slug}",
            "author_id": author_id,
            "comments_disabled": False,
            "draft": draft,
            "promoted": False,
            "position": 0,
            "vote_sum": 0,
            "vote_count": 0,
            "section_id": section_id,
            "created_at": now,
            "updated_at": now,
            "edited_at": now,
            "name": title,
            "title": title,
            "source_locale": "en-us",
            "locale": locale,
            "outdated": False,
            "outdated_locales": [],
            "permission_group_id": 7,
            "content_tag_ids": [],
            "label_names": list(labels),
            "body": body,
            "user_segment_id": None,
        }

    def edit_article(self, article_id: int, body: str) -> None:
        now = self._now()
        self.articles[article_id].update(body=body, updated_at=now, edited_at=now)

    def delete_article(self, article_id: int) -> None:
        del self.articles[article_id]

    def fail(
        self,
        path: str,
        status: int,
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
        cursor_only: bool = False,
    ) -> None:
        """The next `times` GETs of `path` answer `status` (with `headers`) instead of the list."""
        self.faults.append(Fault(path, status, dict(headers or {}), times, cursor_only))

    def paths(self) -> list[str]:
        return [logged.path for logged in self.requests]

    # --- HTTP ------------------------------------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        query = parse_qs(parts.query)
        authorization = request.headers.get("Authorization")
        self.requests.append(Logged("GET", parts.path, query, authorization))
        if authorization not in self._accepted():
            return _send(request, 401, {"error": "Couldn't authenticate you"})
        for fault in self.faults:
            if fault.path == parts.path and fault.times > 0 and (not fault.cursor_only or "page[after]" in query):
                fault.times -= 1
                return _send(request, fault.status, {"error": "fault", "description": "as told"}, fault.headers)
        match = _LIST.match(parts.path)
        if match is None:
            return _send(request, 404, {"error": "InvalidEndpoint", "description": "Not found"})
        what, locale = match["what"], match["locale"]
        store = {"articles": self.articles, "sections": self.sections, "categories": self.categories}[what]
        items = [item for _, item in sorted(store.items()) if locale is None or item["locale"] == locale]
        if "page[size]" in query:
            return self._cursor_page(request, parts.path, what, items, query)
        return self._offset_page(request, parts.path, what, items, query)

    def _accepted(self) -> set[str]:
        basic = base64.b64encode(f"{self.email}/token:{self.token}".encode()).decode()
        return {f"Basic {basic}", f"Bearer {self.oauth_token}"}

    def _cursor_page(
        self, request: BaseHTTPRequestHandler, path: str, what: str, items: list[dict[str, Any]], query: dict
    ) -> None:
        size = int(query["page[size]"][0])
        if not 1 <= size <= 100:
            return _send(request, 400, {"error": "InvalidPaginationParameter", "description": "page[size] <= 100"})
        start = 0
        if "page[after]" in query:
            after_id = int(base64.urlsafe_b64decode(query["page[after]"][0]).decode())
            start = next((i for i, item in enumerate(items) if item["id"] > after_id), len(items))
        page = items[start : start + size]
        has_more = start + size < len(items)
        after = base64.urlsafe_b64encode(str(page[-1]["id"]).encode()).decode() if page else None
        before = base64.urlsafe_b64encode(str(page[0]["id"]).encode()).decode() if page else None
        base = f"{self.url}{path}"
        body = {
            what: page,
            "meta": {"has_more": has_more, "after_cursor": after, "before_cursor": before},
            "links": {
                "first": f"{base}?{urlencode({'page[size]': size})}",
                "last": f"{base}?{urlencode({'page[before]': '', 'page[size]': size})}",
                "next": f"{base}?{urlencode({'page[after]': after, 'page[size]': size})}" if has_more else None,
                "prev": f"{base}?{urlencode({'page[before]': before, 'page[size]': size})}" if start else None,
            },
        }
        _send(request, 200, body)

    def _offset_page(
        self, request: BaseHTTPRequestHandler, path: str, what: str, items: list[dict[str, Any]], query: dict
    ) -> None:
        per_page = int(query.get("per_page", ["30"])[0])
        page = int(query.get("page", ["1"])[0])
        chunk = items[(page - 1) * per_page : page * per_page]
        more = page * per_page < len(items)
        body = {
            what: chunk,
            "page": page,
            "per_page": per_page,
            "page_count": max(1, -(-len(items) // per_page)),
            "count": len(items),
            "sort_by": "position",
            "sort_order": "asc",
            "next_page": f"{self.url}{path}?page={page + 1}&per_page={per_page}" if more else None,
            "previous_page": f"{self.url}{path}?page={page - 1}&per_page={per_page}" if page > 1 else None,
        }
        _send(request, 200, body)


def _send(
    request: BaseHTTPRequestHandler, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    data = json.dumps(body).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/json; charset=utf-8")
    request.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        request.send_header(name, value)
    request.end_headers()
    request.wfile.write(data)
