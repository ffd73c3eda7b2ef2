"""A GitHub repository's documents as a source: Markdown, text, HTML, PDF and Office files under a path at a branch.

One tree listing (`git/trees/{branch}?recursive=1`) gives every file's blob sha, which is its version: a file whose
sha the last sync kept costs no request at all. Changed files are read from the blob API and dated by their last
commit (one commits call each, only for changed files).
"""

from __future__ import annotations

import base64
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

import httpx

from retrieval.loaders import SUPPORTED_SUFFIXES
from retrieval.sources.base import (
    Changed,
    Connector,
    DocumentMeta,
    Failed,
    Item,
    KnownDocument,
    SourceError,
    Unchanged,
)
from retrieval.sources.http import FetchError, SourceHttp, json_object, retry_after_seconds

logger = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
SECONDARY_LIMIT_WAIT_S = 60.0  # GitHub: with no header to go by, wait at least a minute after a secondary limit
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_SYMLINK_MODE = "120000"


def github_rate_limit_wait(response: httpx.Response, now: float | None = None) -> float | None:
    """Seconds to wait when a 403/429 is GitHub's rate limit rather than a refusal: `x-ratelimit-remaining: 0`
    waits until `x-ratelimit-reset` (UTC epoch seconds), a `retry-after` as given, a secondary limit a minute."""
    if response.status_code not in (403, 429):
        return None
    headers = response.headers
    reset = headers.get("x-ratelimit-reset", "")
    if headers.get("x-ratelimit-remaining") == "0" and reset.isdigit():
        return max(1.0, int(reset) - (time.time() if now is None else now))
    waited = retry_after_seconds(headers.get("retry-after"), now)
    if waited is not None:
        return waited
    if "secondary rate limit" in response.text.lower():
        return SECONDARY_LIMIT_WAIT_S
    return None


class GitHubConnector(Connector):
    """The documents of `repo` ("owner/name") under `path` at `branch`.

    Args:
        repo: "owner/name".
        branch: the branch (or tag) to read; None reads the repository's default branch.
        path: the folder to keep ("docs"); "" keeps the whole repository.
        token: a token (fine-grained, classic or an app's), sent as Bearer; None works for public repositories
            within the anonymous rate limit.
        token_env: the environment variable the token came from, named when GitHub refuses it.
        api_url: the REST API root (https://github.example.com/api/v3 for GitHub Enterprise Server).
        sleep: how waits are made (tests record them instead).
    """

    kind = "github"

    def __init__(
        self,
        repo: str,
        *,
        branch: str | None = None,
        path: str = "",
        token: str | None,
        token_env: str,
        api_url: str = "https://api.github.com",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        repo = repo.strip().strip("/")
        if not _REPO.match(repo):
            raise SourceError(f"a GitHub repository is written owner/name (like acme/handbook), got {repo!r}")
        self.repo = repo
        self.branch = branch.strip() if branch else None
        self.path = path.strip().strip("/")
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.token_env = token_env
        self.http = SourceHttp(
            base_url=api_url.rstrip("/"),
            headers=headers,
            token_env=token_env,
            what=f"GitHub ({repo})",
            sleep=sleep,
            rate_limit_wait=github_rate_limit_wait,
        )

    def walk(self, known: Mapping[str, KnownDocument]) -> Iterator[Item]:
        """Every supported file under `path`: Unchanged when its blob sha is the version the last sync kept,
        else Changed with its bytes; a file that cannot be read is Failed and the walk goes on."""
        info = self._get_json(f"/repos/{self.repo}", what="the repository")
        branch = self.branch or str(info.get("default_branch") or "")
        if not branch:
            raise SourceError(f"GitHub ({self.repo}) has no default branch: give the branch to read")
        html_url = str(info.get("html_url") or f"https://github.com/{self.repo}")
        for path, sha in self._files(branch):
            previous = known.get(path)
            if previous is not None and previous.version == sha:
                yield Unchanged(path)
                continue
            yield self._fetch(path, sha, branch, f"{html_url}/blob/{quote(branch)}/{quote(path)}")

    def _files(self, branch: str) -> Iterator[tuple[str, str]]:
        """(path, blob sha) of the files to keep, from one recursive tree, or tree by tree when GitHub truncated
        it (past 100,000 entries or 7 MB): a truncated listing would let the sync prune what it did not list."""
        tree = self._tree(quote(branch), recursive=True, branch=branch)
        if not tree.get("truncated"):
            yield from self._kept(tree.get("tree") or [], prefix="")
            return
        logger.warning(
            "GitHub (%s): the tree of %s is too large for one listing; reading it folder by folder", self.repo, branch
        )
        pending = [("", str(tree.get("sha") or quote(branch)))]
        while pending:
            prefix, sha = pending.pop()
            subtree = self._tree(sha, recursive=False, branch=branch)
            if subtree.get("truncated"):
                raise SourceError(f"GitHub ({self.repo}): the folder {prefix or '/'} has too many entries to list")
            entries = subtree.get("tree") or []
            yield from self._kept(entries, prefix)
            for entry in entries:
                folder = prefix + str(entry.get("path"))
                if entry.get("type") == "tree" and self._may_hold(folder):
                    pending.append((folder + "/", str(entry.get("sha"))))

    def _kept(self, entries: list[dict[str, Any]], prefix: str) -> Iterator[tuple[str, str]]:
        for entry in entries:
            if entry.get("type") != "blob" or entry.get("mode") == _SYMLINK_MODE:
                continue
            path = prefix + str(entry.get("path") or "")
            if PurePosixPath(path).suffix.lower() in SUPPORTED_SUFFIXES and self._under_path(path):
                yield path, str(entry.get("sha") or "")

    def _under_path(self, path: str) -> bool:
        return not self.path or path == self.path or path.startswith(self.path + "/")

    def _may_hold(self, folder: str) -> bool:
        """Whether files under `path` can sit in `folder` (it is inside `path`, or on the way to it)."""
        return self._under_path(folder) or self.path.startswith(folder + "/")

    def _tree(self, ref: str, *, recursive: bool, branch: str) -> dict[str, Any]:
        try:
            return self._get_json(
                f"/repos/{self.repo}/git/trees/{ref}", params={"recursive": "1"} if recursive else None, what="tree"
            )
        except FetchError as exc:
            if exc.status in (404, 409, 422):  # 409: the repository is empty
                raise SourceError(f"GitHub ({self.repo}): no branch {branch!r} to read (HTTP {exc.status})") from exc
            raise

    def _fetch(self, path: str, sha: str, branch: str, url: str) -> Item:
        try:
            blob = self._get_json(f"/repos/{self.repo}/git/blobs/{sha}", what=path)
            content = _blob_bytes(blob)
        except FetchError as exc:
            if exc.status in (403, 429):  # a rate limit too long to wait out: every next file would fail too
                raise SourceError(f"GitHub ({self.repo}): {exc}") from exc
            return Failed(path, str(exc), url)
        except ValueError as exc:
            return Failed(path, f"unreadable blob: {exc}", url)
        updated, author = self._last_commit(path, branch)
        file = PurePosixPath(path)
        meta = DocumentMeta(
            key=path, url=url, title=file.stem, section=file.parent.parts, updated=updated, author=author
        )
        return Changed(meta=meta, content=content, name=file.name, version=sha)

    def _last_commit(self, path: str, branch: str) -> tuple[datetime | None, str]:
        """When the file last changed on the branch and who wrote that change; unknown (not a failure) if the
        commits call fails, since the content itself was read."""
        try:
            commits = self.http.get(
                f"/repos/{self.repo}/commits", params={"path": path, "sha": branch, "per_page": 1}
            ).json()
            commit = commits[0]["commit"]
            updated = datetime.fromisoformat(str(commit["committer"]["date"]).replace("Z", "+00:00"))
            return updated, str(commit["author"]["name"] or "")
        except FetchError as exc:
            if exc.status in (403, 429):
                raise SourceError(f"GitHub ({self.repo}): {exc}") from exc
            logger.warning("GitHub (%s): no commit date for %s: %s", self.repo, path, exc)
        except (ValueError, LookupError, TypeError) as exc:
            logger.warning("GitHub (%s): no commit date for %s: %s", self.repo, path, exc)
        return None, ""

    def _get_json(self, url: str, *, what: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = self.http.get(url, params=params)
        except FetchError as exc:
            if exc.status == 404 and what == "the repository":
                raise SourceError(
                    f"GitHub has no repository {self.repo} (a private one needs a token in {self.token_env})"
                ) from exc
            raise
        return json_object(response, f"GitHub ({self.repo}), asked for {what},")

    def close(self) -> None:
        self.http.close()


def _blob_bytes(blob: Mapping[str, Any]) -> bytes:
    content = blob.get("content")
    if not isinstance(content, str):
        raise ValueError("no content")
    if blob.get("encoding") == "base64":
        return base64.b64decode(content)
    return content.encode("utf-8")
