"""A local Confluence Cloud site speaking the v1 REST API's shapes, for connector tests:
`GET /wiki/rest/api/space/{key}`, `GET /wiki/rest/api/content?spaceKey=..&type=page&status=current&expand=..&limit=..`
(at most `max_limit` a page, the next page only through the opaque cursor in `_links.next`, as Cloud does) and
`GET /wiki/rest/api/content/{id}`. Expansions are honoured: what is not asked for is left in `_expandable`. It
checks the auth header (Basic email:API token, or Bearer for a personal access token) and records every request."""

from __future__ import annotations

import base64
import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit


@dataclass
class WikiPage:
    id: str
    space: str
    title: str
    body: str
    parent: str | None = None
    number: int = 1
    when: str = "2026-11-02T09:15:00.000Z"
    author: str = "Ana Ruiz"
    labels: tuple[str, ...] = ()


@dataclass
class ConfluenceState:
    email: str | None  # None: the token is a personal access token sent as Bearer (Data Center)
    token: str
    spaces: dict[str, str]  # key -> name
    pages: dict[str, WikiPage] = field(default_factory=dict)
    max_limit: int = 2  # Confluence caps `limit` by its own rules; this one pages 2 at a time
    fail_body: set[str] = field(default_factory=set)  # page ids whose content request answers 500
    fail_listing: bool = False  # the content listing answers 500
    throttle_once: set[str] = field(default_factory=set)  # paths answered 429 (Retry-After: 7) once
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (path, query)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, page: WikiPage) -> None:
        self.pages[page.id] = page

    def edit(self, page_id: str, body: str, when: str) -> None:
        page = self.pages[page_id]
        page.body, page.number, page.when = body, page.number + 1, when

    def body_requests(self) -> list[str]:
        """Ids of the pages whose body was asked for, in order."""
        return [
            path.rsplit("/", 1)[1]
            for path, query in self.requests
            if path.startswith("/wiki/rest/api/content/") and "body.storage" in query.get("expand", "")
        ]


class _Handler(BaseHTTPRequestHandler):
    state: ConfluenceState
    base: str

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        state = self.state
        with state.lock:
            state.requests.append((parts.path, query))
            if parts.path in state.throttle_once:
                state.throttle_once.discard(parts.path)
                return self._send(429, {"message": "Rate limit exceeded"}, {"Retry-After": "7"})
        if state.email is None:
            expected = f"Bearer {state.token}"
        else:
            expected = "Basic " + base64.b64encode(f"{state.email}:{state.token}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            return self._send(401, {"code": 401, "message": "Client must be authenticated to access this resource."})
        if parts.path.startswith("/wiki/rest/api/space/"):
            return self._space(parts.path.rsplit("/", 1)[1])
        if parts.path == "/wiki/rest/api/content" and state.fail_listing:
            return self._send(500, {"statusCode": 500, "message": "Internal server error"})
        if parts.path == "/wiki/rest/api/content":
            return self._list(query)
        if parts.path.startswith("/wiki/rest/api/content/"):
            page_id = parts.path.rsplit("/", 1)[1]
            if page_id in state.fail_body:
                return self._send(500, {"statusCode": 500, "message": "Internal server error"})
            page = state.pages.get(page_id)
            if page is None:
                return self._send(404, {"statusCode": 404, "message": f"No content found with id: {page_id}"})
            return self._send(200, {**self._content(page, query.get("expand", "")), "_links": self._links(page)})
        return self._send(404, {"statusCode": 404, "message": "null for uri: " + parts.path})

    def _space(self, key: str) -> None:
        name = self.state.spaces.get(key)
        if name is None:
            return self._send(404, {"statusCode": 404, "message": f"No space with key : {key}", "reason": "Not Found"})
        links = {"webui": f"/spaces/{key}", "self": f"{self.base}/rest/api/space/{key}", "base": self.base}
        return self._send(
            200,
            {
                "id": 98000 + sorted(self.state.spaces).index(key),
                "key": key,
                "name": name,
                "type": "global",
                "_links": links,
            },
        )

    def _list(self, query: dict[str, str]) -> None:
        if query.get("type") != "page" or query.get("status") != "current" or "spaceKey" not in query:
            return self._send(
                400, {"statusCode": 400, "message": "this fake expects spaceKey, type=page, status=current"}
            )
        start = int(query.get("start", "0"))
        if start and query.get("cursor") != _cursor(start):  # Cloud pages through the cursor in `_links.next`
            return self._send(400, {"statusCode": 400, "message": "start without its cursor"})
        limit = min(int(query.get("limit", "25")), self.state.max_limit)
        pages = sorted((p for p in self.state.pages.values() if p.space == query["spaceKey"]), key=lambda p: p.id)
        chunk = pages[start : start + limit]
        links: dict[str, str] = {"base": self.base, "context": "/wiki", "self": f"{self.base}/rest/api/content"}
        if start + limit < len(pages):
            following = {k: v for k, v in query.items() if k not in ("start", "cursor", "next")}
            following.update(next="true", cursor=_cursor(start + limit), start=str(start + limit), limit=str(limit))
            links["next"] = "/rest/api/content?" + urlencode(following)
        results = [{**self._content(p, query.get("expand", "")), "_links": self._links(p, nested=True)} for p in chunk]
        return self._send(
            200, {"results": results, "start": start, "limit": limit, "size": len(chunk), "_links": links}
        )

    def _links(self, page: WikiPage, nested: bool = False) -> dict[str, str]:
        links = {
            "webui": f"/spaces/{page.space}/pages/{page.id}/{page.title.replace(' ', '+')}",
            "editui": f"/pages/resumedraft.action?draftId={page.id}",
            "tinyui": f"/x/{page.id}",
            "self": f"{self.base}/rest/api/content/{page.id}",
        }
        return links if nested else {**links, "base": self.base, "context": "/wiki"}

    def _content(self, page: WikiPage, expand: str) -> dict:
        wanted = set(expand.split(",")) if expand else set()
        data: dict = {"id": page.id, "type": "page", "status": "current", "title": page.title}
        expandable: dict[str, str] = {"space": f"/rest/api/space/{page.space}", "children": "", "history": ""}
        if "version" in wanted:
            data["version"] = {
                "by": {"type": "known", "accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": page.author},
                "when": page.when,
                "number": page.number,
                "minorEdit": False,
            }
        else:
            expandable["version"] = ""
        if "ancestors" in wanted:
            data["ancestors"] = [
                {"id": a.id, "type": "page", "status": "current", "title": a.title} for a in self._ancestors(page)
            ]
        else:
            expandable["ancestors"] = ""
        if "metadata.labels" in wanted:
            results = [{"prefix": "global", "name": n, "id": str(i), "label": n} for i, n in enumerate(page.labels)]
            data["metadata"] = {"labels": {"results": results, "start": 0, "limit": 200, "size": len(results)}}
        else:
            expandable["metadata"] = ""
        if "body.storage" in wanted:
            data["body"] = {"storage": {"value": page.body, "representation": "storage"}}
        else:
            expandable["body"] = ""
        data["_expandable"] = expandable
        return data

    def _ancestors(self, page: WikiPage) -> list[WikiPage]:
        chain: list[WikiPage] = []
        parent = self.state.pages.get(page.parent or "")
        while parent is not None:
            chain.insert(0, parent)
            parent = self.state.pages.get(parent.parent or "")
        return chain

    def _send(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)


def _cursor(start: int) -> str:
    return base64.urlsafe_b64encode(f"content:{start}".encode()).decode()


@contextlib.contextmanager
def serve_fake_confluence(state: ConfluenceState) -> Iterator[str]:
    """Serve `state` on 127.0.0.1; yields the site URL with its context path (`http://127.0.0.1:PORT/wiki`)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}/wiki"
    server.RequestHandlerClass = type("Handler", (_Handler,), {"state": state, "base": base})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
