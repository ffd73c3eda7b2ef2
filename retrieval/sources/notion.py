"""Notion pages shared with an integration, through the public API (version 2022-06-28).

Pages are listed twice over: `POST /v1/search` for every shared page, and each shared database queried for its rows,
because search is a best-effort index that can lag behind a database's newest rows. The listing carries each page's
`last_edited_time`, which is its version: an unchanged page costs nothing more, a changed one has its blocks read
(`GET /v1/blocks/{id}/children`, recursively) and written out as Markdown.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from retrieval.sources.base import (
    Changed,
    Connector,
    DocumentMeta,
    Failed,
    Item,
    KnownDocument,
    SourceAuthError,
    SourceError,
    Unchanged,
    parse_timestamp,
)
from retrieval.sources.http import SourceHttp, json_object

NOTION_VERSION = "2022-06-28"
PAGE_SIZE = 100  # the API's maximum for search, database queries and block children
MAX_DEPTH = 12  # nesting of blocks read under a page; deeper children are left out rather than walked forever
MAX_PARENTS = 32


class NotionConnector(Connector):
    """Every page the integration can see. `token` is the integration's secret (sent as Bearer), `token_env` the
    variable it came from, named when Notion refuses it."""

    kind = "notion"

    def __init__(
        self,
        *,
        token: str | None,
        token_env: str,
        base_url: str = "https://api.notion.com",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.token = token
        self.token_env = token_env
        headers = {"Notion-Version": NOTION_VERSION, "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = SourceHttp(
            base_url=base_url.rstrip("/"), headers=headers, token_env=token_env, what="Notion", sleep=sleep
        )

    def walk(self, known: Mapping[str, KnownDocument]) -> Iterator[Item]:
        if not self.token:
            raise SourceAuthError(f"Notion needs an integration token: set {self.token_env or 'one'} (--token-env)")
        pages: dict[str, dict[str, Any]] = {}
        for page in self._search("page"):
            pages[page["id"]] = page
        databases = {database["id"]: database for database in self._search("database")}
        for database_id in databases:
            for page in self._paginate("POST", f"/v1/databases/{database_id}/query", {}):
                pages.setdefault(page["id"], page)
        titles = {key: page_title(page) for key, page in pages.items()}
        titles.update({key: _plain(database.get("title")) for key, database in databases.items()})
        parents = {key: item.get("parent") or {} for key, item in (*pages.items(), *databases.items())}
        for key, page in pages.items():
            if page.get("archived") or page.get("in_trash"):
                continue
            yield self._item(page, _section(key, parents, titles), known.get(key))

    def close(self) -> None:
        self.http.close()

    def _search(self, kind: str) -> Iterator[dict[str, Any]]:
        yield from self._paginate("POST", "/v1/search", {"filter": {"property": "object", "value": kind}})

    def _paginate(self, method: str, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every result of a paginated endpoint, following `next_cursor` while `has_more`: in the body of a POST,
        as a query parameter of a GET."""
        cursor: str | None = None
        while True:
            if method == "POST":
                payload = {**body, "page_size": PAGE_SIZE, **({"start_cursor": cursor} if cursor else {})}
                response = self.http.request("POST", path, json=payload)
            else:
                params = {"page_size": PAGE_SIZE, **({"start_cursor": cursor} if cursor else {})}
                response = self.http.get(path, params=params)
            data = json_object(response, f"Notion: {path}")
            results = data.get("results")
            if not isinstance(results, list):
                raise SourceError(f"Notion: {path} answered without results")
            yield from (item for item in results if isinstance(item, dict) and item.get("id"))
            cursor = data.get("next_cursor")
            if not data.get("has_more") or not cursor:
                return

    def _item(self, page: dict[str, Any], section: tuple[str, ...], previous: KnownDocument | None) -> Item:
        key = str(page["id"])
        version = str(page.get("last_edited_time") or "")
        if version and previous is not None and previous.version == version:
            return Unchanged(key)
        url = str(page.get("url") or "")
        title = page_title(page)
        try:
            blocks = self._blocks(key, 0)
        except SourceAuthError:  # a refused token stops the walk; any other failure is this page's alone
            raise
        except SourceError as exc:
            return Failed(key, str(exc), url)
        meta = DocumentMeta(
            key=key,
            url=url,
            title=title,
            section=section,
            updated=parse_timestamp(page.get("last_edited_time")),
            author=str((page.get("last_edited_by") or page.get("created_by") or {}).get("id") or ""),
            tags=page_tags(page),
        )
        body = blocks_markdown(blocks)
        content = f"# {title}\n\n{body}" if title else body
        return Changed(meta, content, "page.md", version=version)

    def _blocks(self, block_id: str, depth: int) -> list[dict[str, Any]]:
        """The block's children, each with its own children under `"children"` (child pages and databases are
        documents of their own and are not read into this one)."""
        blocks = list(self._paginate("GET", f"/v1/blocks/{block_id}/children", {}))
        for block in blocks:
            if block.get("has_children") and depth < MAX_DEPTH and block.get("type") not in _OWN_DOCUMENTS:
                block["children"] = self._blocks(str(block["id"]), depth + 1)
        return blocks


_OWN_DOCUMENTS = ("child_page", "child_database")


def page_title(page: Mapping[str, Any]) -> str:
    """The page's title property (whatever a database names it), as plain text."""
    for prop in (page.get("properties") or {}).values():
        if isinstance(prop, dict) and prop.get("type") == "title":
            return _plain(prop.get("title"))
    return ""


def page_tags(page: Mapping[str, Any]) -> tuple[str, ...]:
    """The names in a multi-select property called Tags (any case), the usual way a Notion database tags pages."""
    for name, prop in (page.get("properties") or {}).items():
        if name.lower() == "tags" and isinstance(prop, dict) and prop.get("type") == "multi_select":
            return tuple(
                str(o["name"]) for o in prop.get("multi_select") or [] if isinstance(o, dict) and o.get("name")
            )
    return ()


def _section(key: str, parents: Mapping[str, Mapping[str, Any]], titles: Mapping[str, str]) -> tuple[str, ...]:
    """Titles of the page's parents the integration can see (pages and databases), outermost first; a parent it
    cannot see ends the path."""
    path: list[str] = []
    parent = parents.get(key) or {}
    for _ in range(MAX_PARENTS):
        kind = parent.get("type")
        parent_id = parent.get(kind) if kind in ("page_id", "database_id") else None
        if not isinstance(parent_id, str) or parent_id not in titles:
            break
        path.insert(0, titles[parent_id])
        parent = parents.get(parent_id) or {}
    return tuple(p for p in path if p)


def blocks_markdown(blocks: list[dict[str, Any]], indent: str = "") -> str:
    """Blocks as Markdown: headings, paragraphs, lists and to-dos (nested by indenting), code fences, quotes and
    callouts, toggles with their contents, tables. Blocks with no text of their own (images, embeds) are left out;
    consecutive list items stay together, other blocks are separated by a blank line."""
    out: list[str] = []
    previous_listed = False
    number = 0
    for block in blocks:
        kind = str(block.get("type") or "")
        number = number + 1 if kind == "numbered_list_item" else 0
        text = _block_markdown(block, kind, indent, number)
        if not text:
            continue
        listed = kind in _LIST_ITEMS
        if out:
            out.append("\n" if listed and previous_listed else "\n\n")
        out.append(text)
        previous_listed = listed
    return "".join(out)


_LIST_ITEMS = ("bulleted_list_item", "numbered_list_item", "to_do")


def _block_markdown(block: Mapping[str, Any], kind: str, indent: str, number: int) -> str:
    payload = block.get(kind) if isinstance(block.get(kind), dict) else {}
    text = _plain(payload.get("rich_text"))
    children: list[dict[str, Any]] = block.get("children") or []
    if kind in _LIST_ITEMS:
        marker = {"bulleted_list_item": "- ", "numbered_list_item": f"{number}. "}.get(kind)
        marker = marker or ("- [x] " if payload.get("checked") else "- [ ] ")
        nested = blocks_markdown(children, indent + " " * len(marker))
        return f"{indent}{marker}{text}" + (f"\n{nested}" if nested else "")
    if kind in ("heading_1", "heading_2", "heading_3"):
        own = f"{indent}{'#' * int(kind[-1])} {text}" if text else ""
    elif kind == "code":
        language = str(payload.get("language") or "")
        language = "" if language == "plain text" else language
        code = "\n".join(f"{indent}{line}" for line in text.splitlines())
        own = f"{indent}```{language}\n{code}\n{indent}```"
    elif kind in ("quote", "callout"):
        icon = payload.get("icon") or {}
        emoji = str(icon.get("emoji") or "") if kind == "callout" and isinstance(icon, dict) else ""
        lines = f"{emoji} {text}".strip().splitlines() or [""]
        own = "\n".join(f"{indent}> {line}" for line in lines) if text or emoji else ""
    elif kind == "table":
        return _table(children, indent)
    elif kind == "divider":
        own = f"{indent}---"
    elif kind == "equation":
        own = f"{indent}$${payload.get('expression') or ''}$$"
    elif kind in ("bookmark", "embed", "link_preview"):
        own = f"{indent}{payload.get('url') or ''}"
    elif kind in _OWN_DOCUMENTS:
        return ""
    else:  # paragraph, toggle, and any block with text; columns and synced blocks only hold children
        own = "\n".join(f"{indent}{line}" for line in text.splitlines())
    nested = blocks_markdown(children, indent)
    return "\n\n".join(part for part in (own, nested) if part)


def _table(rows: list[dict[str, Any]], indent: str) -> str:
    """Table rows as a Markdown table; the first row is the header, as Markdown needs one."""
    cells = [
        [
            _plain(cell).replace("|", "\\|").replace("\n", " ")
            for cell in (row.get("table_row") or {}).get("cells") or []
        ]
        for row in rows
        if row.get("type") == "table_row"
    ]
    if not cells:
        return ""
    width = max(len(row) for row in cells)
    lines = [f"{indent}| " + " | ".join(row + [""] * (width - len(row))) + " |" for row in cells]
    lines.insert(1, f"{indent}|" + " --- |" * width)
    return "\n".join(lines)


def _plain(rich_text: object) -> str:
    if not isinstance(rich_text, list):
        return ""
    return "".join(str(part.get("plain_text") or "") for part in rich_text if isinstance(part, dict))
