"""The source kinds: the settings each needs, the variable its token is read from by default, and its connector."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from retrieval.sources.base import Connector

# kind -> the settings it cannot do without (what `ragbot source add` must be given)
REQUIRED: dict[str, tuple[str, ...]] = {
    "folder": ("path",),
    "web": ("url",),
    "confluence": ("url", "spaces"),
    "notion": (),
    "zendesk": ("url",),
    "github": ("repo",),
}
SOURCE_KINDS = tuple(REQUIRED)  # the database holds the same list in its check (store.models, below retrieval)
# The environment variable a kind's token is read from when the source names none.
DEFAULT_TOKEN_ENV = {
    "confluence": "CONFLUENCE_API_TOKEN",
    "notion": "NOTION_TOKEN",
    "zendesk": "ZENDESK_API_TOKEN",
    "github": "GITHUB_TOKEN",
}
# Flags for each setting, for messages.
FLAGS = {"path": "--path", "url": "--url", "spaces": "--space", "repo": "--repo"}


def check_settings(kind: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a source of `kind` keeps (empty values dropped), or ValueError saying what is missing or wrong."""
    if kind not in REQUIRED:
        raise ValueError(f"unknown source kind {kind!r} (one of: {', '.join(SOURCE_KINDS)})")
    kept = {key: value for key, value in settings.items() if value not in (None, "", [], ())}
    missing = [FLAGS.get(key, key) for key in REQUIRED[kind] if key not in kept]
    if missing:
        raise ValueError(f"a {kind} source needs {' and '.join(missing)}")
    url = kept.get("url")
    if url is not None and (urlsplit(str(url)).scheme not in ("http", "https") or not urlsplit(str(url)).netloc):
        raise ValueError(f"--url must be an http(s) address, not {url!r}")
    repo = kept.get("repo")
    if repo is not None and (str(repo).count("/") != 1 or str(repo).startswith("/") or str(repo).endswith("/")):
        raise ValueError(f"--repo must be OWNER/NAME, not {repo!r}")
    if "max_pages" in kept and int(kept["max_pages"]) < 1:
        raise ValueError("--max-pages must be at least 1")
    if "delay" in kept and not 0 <= float(kept["delay"]) <= 60:
        raise ValueError("--delay must be between 0 and 60 seconds")
    return kept


def open_connector(
    kind: str,
    settings: Mapping[str, Any],
    *,
    token: str | None = None,
    token_env: str = "",
    sleep: Callable[[float], None] = time.sleep,
    min_interval: float | None = None,
) -> Connector:
    """The connector for a source. Connectors are imported here, one kind at a time, so a sync of a folder loads no
    HTTP client it does not use."""
    settings = check_settings(kind, settings)
    token_env = token_env or DEFAULT_TOKEN_ENV.get(kind, "")
    if kind == "folder":
        from retrieval.sources.folder import FolderConnector

        return FolderConnector(settings["path"], tags=settings.get("tags", ()))
    if kind == "web":
        from retrieval.sources.web import WebConnector

        delay = min_interval if min_interval is not None else settings.get("delay")
        pace = {} if delay is None else {"min_interval": float(delay)}
        return WebConnector(settings["url"], max_pages=int(settings.get("max_pages", 2000)), sleep=sleep, **pace)
    if kind == "confluence":
        from retrieval.sources.confluence import ConfluenceConnector

        return ConfluenceConnector(
            settings["url"],
            settings["spaces"],
            email=settings.get("email"),
            token=token,
            token_env=token_env,
            sleep=sleep,
        )
    if kind == "notion":
        from retrieval.sources.notion import NotionConnector

        base = {"base_url": settings["url"]} if "url" in settings else {}
        return NotionConnector(token=token, token_env=token_env, sleep=sleep, **base)
    if kind == "zendesk":
        from retrieval.sources.zendesk import ZendeskConnector

        return ZendeskConnector(
            settings["url"],
            email=settings.get("email"),
            token=token,
            token_env=token_env,
            locale=settings.get("locale"),
            sleep=sleep,
        )
    from retrieval.sources.github import GitHubConnector

    api = {"api_url": settings["url"]} if "url" in settings else {}
    return GitHubConnector(
        settings["repo"],
        branch=settings.get("branch"),
        path=settings.get("path", ""),
        token=token,
        token_env=token_env,
        sleep=sleep,
        **api,
    )
