"""A local Notion API (version 2022-06-28) for connector tests: `POST /v1/search` with the object filter,
`POST /v1/databases/{id}/query` and `GET /v1/blocks/{id}/children`, each paginated with `start_cursor` /
`next_cursor` / `has_more` and at most `max_page` results a response (the API may send fewer than `page_size`).
It answers 401 `unauthorized` to a wrong Bearer token and 400 `missing_version` without the Notion-Version header,
with Notion's error object, and records every request."""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

VERSION = "2022-06-28"
USER = "6794760a-1f15-45cd-9c65-0dfe42f5135a"


def rich(text: str) -> list[dict[str, Any]]:
    """A rich-text array as the API sends it (one plain run)."""
    annotations = {"bold": False, "italic": False, "strikethrough": False, "underline": False, "code": False}
    return [
        {
            "type": "text",
            "text": {"content": text, "link": None},
            "annotations": {**annotations, "color": "default"},
            "plain_text": text,
            "href": None,
        }
    ]


def block(kind: str, text: str = "", *children: dict[str, Any], **payload: Any) -> dict[str, Any]:
    """A block in the shape `GET /v1/blocks/{id}/children` returns (ids and parents are filled in when served);
    `children` are its nested blocks."""
    body: dict[str, Any] = {**payload}
    if kind not in ("table", "table_row", "divider", "child_page"):
        body = {"rich_text": rich(text), "color": "default", **payload}
    if kind == "child_page":
        body = {"title": text}
    return {"object": "block", "type": kind, kind: body, "has_children": bool(children), "children": list(children)}


def table(*rows: list[str], header: bool = True) -> dict[str, Any]:
    cells = [block("table_row", cells=[rich(c) for c in row]) for row in rows]
    return block("table", "", *cells, table_width=len(rows[0]), has_column_header=header, has_row_header=False)


@dataclass
class NotionPage:
    id: str
    title: str
    parent: tuple[str, str] = ("workspace", "")  # ("page_id", id), ("database_id", id) or ("workspace", "")
    edited: str = "2026-11-02T09:15:00.000Z"
    blocks: list[dict[str, Any]] = field(default_factory=list)
    tags: tuple[str, ...] = ()
    indexed: bool = True  # found by search (Notion's search index can lag behind a database's new rows)


@dataclass
class NotionDatabase:
    id: str
    title: str
    parent: tuple[str, str]


@dataclass
class NotionState:
    token: str
    pages: dict[str, NotionPage] = field(default_factory=dict)
    databases: dict[str, NotionDatabase] = field(default_factory=dict)
    max_page: int = 2
    fail_blocks: set[str] = field(default_factory=set)  # page ids whose children request answers 500
    throttle_once: set[str] = field(default_factory=set)  # paths answered 429 (Retry-After: 3) once
    requests: list[dict[str, Any]] = field(default_factory=list)  # method, path, query, body, version
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, page: NotionPage) -> None:
        self.pages[page.id] = page

    def children_requests(self) -> list[str]:
        """Ids whose block children were asked for, in order."""
        return [r["path"].split("/")[3] for r in self.requests if r["path"].endswith("/children")]


class _Handler(BaseHTTPRequestHandler):
    state: NotionState

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        state = self.state
        with state.lock:
            body = json.loads(raw) if raw else None
            record = {"method": method, "path": parts.path, "query": query, "body": body}
            state.requests.append({**record, "version": self.headers.get("Notion-Version")})
            if parts.path in state.throttle_once:
                state.throttle_once.discard(parts.path)
                message = "You have been rate limited. Please try again in a few minutes."
                return self._error(429, "rate_limited", message, {"Retry-After": "3"})
            if self.headers.get("Authorization") != f"Bearer {state.token}":
                return self._error(401, "unauthorized", "API token is invalid.")
            if self.headers.get("Notion-Version") != VERSION:
                return self._error(400, "missing_version", "Notion-Version header failed validation.")
            if method == "POST" and parts.path == "/v1/search":
                return self._search(body or {})
            segments = parts.path.strip("/").split("/")
            if method == "POST" and len(segments) == 4 and segments[1] == "databases" and segments[3] == "query":
                database_id = segments[2]
                if database_id not in state.databases:
                    return self._error(404, "object_not_found", f"Could not find database with ID: {database_id}.")
                rows = [self._page(p) for p in state.pages.values() if p.parent == ("database_id", database_id)]
                return self._list(rows, parts.path, (body or {}).get("start_cursor"), "page_or_database")
            if method == "GET" and len(segments) == 4 and segments[1] == "blocks" and segments[3] == "children":
                return self._children(segments[2], parts.path, query.get("start_cursor"))
            return self._error(400, "invalid_request_url", "Invalid request URL.")

    def _search(self, body: dict[str, Any]) -> None:
        wanted = (body.get("filter") or {}).get("value")
        if (body.get("filter") or {}).get("property") != "object" or wanted not in ("page", "database"):
            return self._error(400, "validation_error", "this fake expects filter.property object, value page/database")
        if wanted == "page":
            found = [self._page(p) for p in self.state.pages.values() if p.indexed]
        else:
            found = [self._database(d) for d in self.state.databases.values()]
        return self._list(found, f"/v1/search:{wanted}", body.get("start_cursor"), "page_or_database")

    def _children(self, block_id: str, path: str, cursor: str | None) -> None:
        if block_id in self.state.fail_blocks:
            return self._error(500, "internal_server_error", "Unexpected error occurred.")
        owners: dict[str, tuple[str, list[dict[str, Any]]]] = {}
        for page in self.state.pages.values():
            _index(page.id, "page_id", page.blocks, owners)
        if block_id not in owners:
            return self._error(404, "object_not_found", f"Could not find block with ID: {block_id}.")
        parent_kind, blocks = owners[block_id]
        served = [
            {
                **{k: v for k, v in b.items() if k != "children"},
                "parent": {"type": parent_kind, parent_kind: block_id},
                "archived": False,
                "in_trash": False,
            }
            for b in blocks
        ]
        return self._list(served, path, cursor, "block")

    def _list(self, results: list[dict[str, Any]], listing: str, cursor: str | None, kind: str) -> None:
        """One page of `results`; the cursor is an opaque id the server remembers for this listing."""
        start = 0
        if cursor:
            start = _CURSORS.get((listing, cursor), -1)
            if start < 0:
                return self._error(400, "validation_error", "start_cursor is not valid for this request.")
        chunk = results[start : start + self.state.max_page]
        more = start + self.state.max_page < len(results)
        next_cursor = None
        if more:
            next_cursor = str(uuid.uuid4())
            _CURSORS[(listing, next_cursor)] = start + self.state.max_page
        body = {"object": "list", "results": chunk, "next_cursor": next_cursor, "has_more": more, "type": kind}
        return self._send(200, {**body, kind: {}})

    def _page(self, page: NotionPage) -> dict[str, Any]:
        title_name = "Name" if page.parent[0] == "database_id" else "title"
        properties: dict[str, Any] = {title_name: {"id": "title", "type": "title", "title": rich(page.title)}}
        if page.parent[0] == "database_id":
            options = [{"id": f"opt-{t}", "name": t, "color": "blue"} for t in page.tags]
            properties["Tags"] = {"id": "%3BvX%5E", "type": "multi_select", "multi_select": options}
        return {
            "object": "page",
            "id": page.id,
            "created_time": "2026-01-05T10:00:00.000Z",
            "last_edited_time": page.edited,
            "created_by": {"object": "user", "id": USER},
            "last_edited_by": {"object": "user", "id": USER},
            "cover": None,
            "icon": None,
            "parent": _parent(page.parent),
            "archived": False,
            "in_trash": False,
            "properties": properties,
            "url": f"https://www.notion.so/{page.title.replace(' ', '-')}-{page.id.replace('-', '')}",
            "public_url": None,
        }

    def _database(self, database: NotionDatabase) -> dict[str, Any]:
        return {
            "object": "database",
            "id": database.id,
            "created_time": "2026-01-05T10:00:00.000Z",
            "last_edited_time": "2026-01-05T10:00:00.000Z",
            "title": rich(database.title),
            "description": [],
            "parent": _parent(database.parent),
            "url": f"https://www.notion.so/{database.id.replace('-', '')}",
            "archived": False,
            "in_trash": False,
            "is_inline": False,
            "properties": {"Name": {"id": "title", "name": "Name", "type": "title", "title": {}}},
        }

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        body = {"object": "error", "status": status, "code": code, "message": message, "request_id": str(uuid.uuid4())}
        return self._send(status, body, headers)

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)


_CURSORS: dict[tuple[str, str], int] = {}


def _parent(parent: tuple[str, str]) -> dict[str, Any]:
    kind, value = parent
    return {"type": "workspace", "workspace": True} if kind == "workspace" else {"type": kind, kind: value}


def _index(owner: str, kind: str, blocks: list[dict[str, Any]], owners: dict) -> None:
    """Give each block a stable id (its owner's id and position) and note whose children each list is."""
    owners[owner] = (kind, blocks)
    for position, child in enumerate(blocks):
        child["id"] = f"{owner[:8]}-{position:04d}-4000-8000-{uuid.uuid5(uuid.NAMESPACE_URL, owner).hex[:12]}"
        _index(child["id"], "block_id", child.get("children") or [], owners)


@contextlib.contextmanager
def serve_fake_notion(state: NotionState) -> Iterator[str]:
    """Serve `state` on 127.0.0.1; yields the API's base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_Handler,), {"state": state}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
