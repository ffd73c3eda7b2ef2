"""A local HTTP server that plays the parts of GitHub's REST API a repository source reads, in the shapes of the
public reference: `GET /repos/{owner}/{repo}`, `GET .../git/trees/{ref}` (with `?recursive=1` and `truncated`),
`GET .../git/blobs/{sha}` (base64 content), `GET .../commits?path=&sha=&per_page=`, Bearer tokens ("Bad
credentials" as 401), the x-ratelimit-* headers on every answer, and the real git object ids (blob and tree shas).
It records every request and can be told to fail some."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

_CLOCK_START = datetime(2026, 4, 1, 8, 0, tzinfo=timezone.utc)
DOCS = "https://docs.github.com/rest"


def blob_sha(data: bytes) -> str:
    """Git's object id of a file's bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Logged:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class Fault:
    path: str
    status: int
    headers: dict[str, str]
    message: str
    times: int


@dataclass
class Commit:
    date: str
    author: str


@dataclass
class FakeGitHub:
    owner: str = "acme"
    name: str = "handbook"
    token: str = "ghp_fake_token"
    default_branch: str = "main"
    private: bool = True  # a private repository answers 404 without a token, as GitHub does
    truncate_recursive_at: int | None = None  # answer ?recursive=1 with this many entries and "truncated": true
    branches: dict[str, dict[str, bytes]] = field(default_factory=dict)
    commits: dict[tuple[str, str], Commit] = field(default_factory=dict)
    requests: list[Logged] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    _ticks: int = 0

    def __post_init__(self) -> None:
        fake = self
        self.branches.setdefault(self.default_branch, {})
        self._objects: dict[str, bytes] = {}  # blob sha -> bytes
        self._trees: dict[str, list[dict[str, Any]]] = {}  # tree sha -> entries

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

    @property
    def repo(self) -> str:
        return f"{self.owner}/{self.name}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- the repository ---------------------------------------------------------------------------------------------

    def commit_file(self, path: str, data: bytes, *, author: str = "Ada Lovelace", branch: str | None = None) -> None:
        branch = branch or self.default_branch
        self._ticks += 1
        when = (_CLOCK_START + timedelta(hours=self._ticks)).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.branches.setdefault(branch, {})[path] = data
        self.commits[(branch, path)] = Commit(when, author)

    def delete_file(self, path: str, branch: str | None = None) -> None:
        del self.branches[branch or self.default_branch][path]

    def fail(self, path: str, status: int, *, headers: dict[str, str] | None = None, message: str = "", times: int = 1):
        """The next `times` GETs of `path` (the API path, e.g. /repos/acme/handbook/git/trees/main) answer `status`."""
        self.faults.append(Fault(path, status, dict(headers or {}), message or "Server Error", times))

    def paths(self) -> list[str]:
        return [logged.path for logged in self.requests]

    def _root_tree(self, branch: str) -> str:
        """Builds the branch's trees bottom-up as git does and returns the root tree's sha."""
        files = self.branches[branch]

        def build(prefix: str) -> str:
            names: dict[str, tuple[str, str]] = {}  # name -> (type, sha)
            for path, data in files.items():
                if not path.startswith(prefix):
                    continue
                head, _, rest = path[len(prefix) :].partition("/")
                if rest:
                    names[head] = ("tree", "")
                else:
                    sha = blob_sha(data)
                    self._objects[sha] = data
                    names[head] = ("blob", sha)
            entries, raw = [], b""
            for item_name in sorted(names):
                kind, sha = names[item_name]
                if kind == "tree":
                    sha = build(f"{prefix}{item_name}/")
                mode = "100644" if kind == "blob" else "040000"
                entry = {"path": item_name, "mode": mode, "type": kind, "sha": sha, "url": self._api(kind, sha)}
                if kind == "blob":
                    entry["size"] = len(self._objects[sha])
                entries.append(entry)
                raw += f"{mode if kind == 'blob' else '40000'} {item_name}".encode() + b"\0" + bytes.fromhex(sha)
            tree_sha = hashlib.sha1(b"tree %d\0" % len(raw) + raw).hexdigest()
            self._trees[tree_sha] = entries
            return tree_sha

        return build("")

    def _api(self, kind: str, sha: str) -> str:
        return f"{self.url}/repos/{self.repo}/git/{kind}s/{sha}"

    # --- HTTP ---------------------------------------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        path, query = unquote(parts.path), parse_qs(parts.query)
        self.requests.append(Logged(path, query, {k.lower(): v for k, v in request.headers.items()}))
        authorization = request.headers.get("Authorization")
        if authorization is not None and authorization not in (f"Bearer {self.token}", f"token {self.token}"):
            return self._send(request, 401, {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"})
        for fault in self.faults:
            if fault.path == path and fault.times > 0:
                fault.times -= 1
                body = {"message": fault.message, "documentation_url": DOCS, "status": str(fault.status)}
                return self._send(request, fault.status, body, fault.headers)
        prefix = f"/repos/{self.repo}"
        if (authorization is None and self.private) or not (path == prefix or path.startswith(prefix + "/")):
            return self._not_found(request)
        rest = path[len(prefix) :]
        if rest == "":
            return self._send(request, 200, self._repository())
        if match := re.fullmatch(r"/git/trees/(.+)", rest):
            return self._tree(request, match[1], recursive=query.get("recursive", ["0"])[0] not in ("0", "false"))
        if match := re.fullmatch(r"/git/blobs/([0-9a-f]{40})", rest):
            return self._blob(request, match[1])
        if rest == "/commits":
            return self._commits(request, query)
        return self._not_found(request)

    def _repository(self) -> dict[str, Any]:
        return {
            "id": 1296269,
            "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5",
            "name": self.name,
            "full_name": self.repo,
            "owner": {"login": self.owner, "id": 1, "type": "Organization"},
            "private": self.private,
            "html_url": f"{self.url}/{self.repo}",
            "description": "Our handbook",
            "fork": False,
            "url": f"{self.url}/repos/{self.repo}",
            "default_branch": self.default_branch,
            "visibility": "private" if self.private else "public",
        }

    def _tree(self, request: BaseHTTPRequestHandler, ref: str, *, recursive: bool) -> None:
        if ref in self.branches:
            sha = self._root_tree(ref)
        elif ref in self._trees:
            sha = ref
        else:
            return self._not_found(request)
        entries = self._flatten(sha, "") if recursive else self._trees[sha]
        truncated = False
        if recursive and self.truncate_recursive_at is not None and len(entries) > self.truncate_recursive_at:
            entries, truncated = entries[: self.truncate_recursive_at], True
        body = {"sha": sha, "url": self._api("tree", sha), "tree": entries, "truncated": truncated}
        self._send(request, 200, body)

    def _flatten(self, sha: str, prefix: str) -> list[dict[str, Any]]:
        out = []
        for entry in self._trees[sha]:
            out.append({**entry, "path": prefix + entry["path"]})
            if entry["type"] == "tree":
                out.extend(self._flatten(entry["sha"], f"{prefix}{entry['path']}/"))
        return out

    def _blob(self, request: BaseHTTPRequestHandler, sha: str) -> None:
        data = self._objects.get(sha)
        if data is None:
            return self._not_found(request)
        encoded = base64.b64encode(data).decode()
        content = "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60)) + "\n"
        body = {
            "sha": sha,
            "node_id": "B_" + sha[:8],
            "size": len(data),
            "url": self._api("blob", sha),
            "content": content,
            "encoding": "base64",
        }
        self._send(request, 200, body)

    def _commits(self, request: BaseHTTPRequestHandler, query: dict[str, list[str]]) -> None:
        branch = query.get("sha", [self.default_branch])[0]
        path = query.get("path", [""])[0]
        commit = self.commits.get((branch, path))
        if branch not in self.branches:
            return self._not_found(request)
        if commit is None or path not in self.branches[branch]:
            return self._send(request, 200, [])
        sha = hashlib.sha1(f"{branch}:{path}:{commit.date}".encode()).hexdigest()
        person = {"name": commit.author, "email": "ada@acme.test", "date": commit.date}
        entry = {
            "sha": sha,
            "node_id": "C_" + sha[:8],
            "commit": {
                "author": person,
                "committer": {**person, "name": "GitHub"},
                "message": f"Update {path}",
                "tree": {"sha": "0" * 40, "url": self._api("tree", "0" * 40)},
                "comment_count": 0,
            },
            "url": f"{self.url}/repos/{self.repo}/commits/{sha}",
            "html_url": f"{self.url}/{self.repo}/commit/{sha}",
            "author": {"login": "ada", "id": 2},
            "committer": {"login": "web-flow", "id": 3},
            "parents": [],
        }
        per_page = int(query.get("per_page", ["30"])[0])
        self._send(request, 200, [entry][:per_page])

    def _not_found(self, request: BaseHTTPRequestHandler) -> None:
        self._send(request, 404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"})

    def _send(self, request: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None):
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json; charset=utf-8")
        request.send_header("Content-Length", str(len(data)))
        limits = {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "4999",
            "x-ratelimit-used": "1",
            "x-ratelimit-reset": "1893456000",
            "x-ratelimit-resource": "core",
        }
        for name, value in {**limits, **(headers or {})}.items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(data)
