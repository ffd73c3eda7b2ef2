"""The Notion connector against a local Notion API (tests/retrieval/sources/fake_notion.py): two walks over a
workspace that changes in between, pages read as Markdown, a page that fails alone, a rate limit waited out, a
refused or missing token."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from retrieval.loaders import parse_markdown
from retrieval.sources import Changed, Failed, KnownDocument, SourceAuthError, Unchanged
from retrieval.sources.notion import NotionConnector
from tests.retrieval.sources.fake_notion import (
    USER,
    VERSION,
    NotionDatabase,
    NotionPage,
    NotionState,
    block,
    serve_fake_notion,
    table,
)

TOKEN = "ntn_4187520924a1xLsyHGxfDmQ4"
HANDBOOK = "0c5e1f5a-1111-4a8e-9d2a-000000000001"
DEPLOYS = "0c5e1f5a-2222-4a8e-9d2a-000000000002"
RUNBOOKS = "7d0b7e44-3333-4c1f-8d9e-000000000003"
ROLLBACK, FAILOVER, RESTORE, RESTART = (f"9a1c2b3d-44{n}-4e5f-8a9b-0000000000{n}" for n in ("41", "42", "43", "44"))

HANDBOOK_BLOCKS = [
    block("heading_1", "Setup"),
    block("paragraph", "Install the CLI first."),
    block("bulleted_list_item", "macOS", block("bulleted_list_item", "brew install acme")),
    block("bulleted_list_item", "Linux"),
    block("numbered_list_item", "Sign in"),
    block("numbered_list_item", "Pick a workspace"),
    block("to_do", "Read the handbook", checked=True),
    block("to_do", "Book onboarding", checked=False),
    block("heading_2", "Limits"),
    table(["Plan", "Seats"], ["Team", "10"], ["Business", "unlimited"]),
    block("code", "acme login --sso\nacme status", language="bash", caption=[]),
    block("quote", "Ship small."),
    block("callout", "SSO needs the Business plan.", icon={"type": "emoji", "emoji": "💡"}),
    block("toggle", "Why a CLI?", block("paragraph", "Scripts need it.")),
    block("divider"),
    block("heading_3", "More"),
    block("child_page", "Deploys"),
]
HANDBOOK_MARKDOWN = """# Handbook

# Setup

Install the CLI first.

- macOS
  - brew install acme
- Linux
1. Sign in
2. Pick a workspace
- [x] Read the handbook
- [ ] Book onboarding

## Limits

| Plan | Seats |
| --- | --- |
| Team | 10 |
| Business | unlimited |

```bash
acme login --sso
acme status
```

> Ship small.

> 💡 SSO needs the Business plan.

Why a CLI?

Scripts need it.

---

### More"""


def workspace() -> NotionState:
    state = NotionState(token=TOKEN)
    state.add(NotionPage(HANDBOOK, "Handbook", blocks=HANDBOOK_BLOCKS))
    deploys = [block("paragraph", "Deploys run on Tuesdays.")]
    state.add(NotionPage(DEPLOYS, "Deploys", ("page_id", HANDBOOK), blocks=deploys))
    state.databases[RUNBOOKS] = NotionDatabase(RUNBOOKS, "Runbooks", ("page_id", HANDBOOK))
    row = ("database_id", RUNBOOKS)
    rollback = [block("paragraph", "Roll back with acme rollout undo.")]
    state.add(NotionPage(ROLLBACK, "Rollback", row, "2026-10-30T16:45:00.000Z", rollback, tags=("ops", "api")))
    state.add(NotionPage(FAILOVER, "Failover", row, blocks=[block("paragraph", "Promote the replica.")]))
    # Search has not indexed this row yet: only the database query finds it.
    state.add(NotionPage(RESTORE, "Restore", row, blocks=[block("paragraph", "From last night.")], indexed=False))
    return state


def connector(url: str, sleeps: list[float] | None = None, token: str | None = TOKEN) -> NotionConnector:
    sleep = ([] if sleeps is None else sleeps).append
    return NotionConnector(token=token, token_env="NOTION_TOKEN", base_url=url, sleep=sleep)


def test_two_walks_list_everything_then_read_only_what_changed() -> None:
    state = workspace()
    with serve_fake_notion(state) as url, connector(url) as notion:
        first = list(notion.walk({}))
        assert all(isinstance(item, Changed) for item in first)
        by_key = {item.meta.key: item for item in first if isinstance(item, Changed)}
        assert list(by_key) == [HANDBOOK, DEPLOYS, ROLLBACK, FAILOVER, RESTORE]

        rollback = by_key[ROLLBACK]
        assert rollback.meta.url == f"https://www.notion.so/Rollback-{ROLLBACK.replace('-', '')}"
        assert rollback.meta.title == "Rollback"
        assert rollback.meta.section == ("Handbook", "Runbooks")
        assert rollback.meta.updated == datetime(2026, 10, 30, 16, 45, tzinfo=timezone.utc)
        assert rollback.meta.author == USER
        assert rollback.meta.tags == ("ops", "api")
        assert rollback.version == "2026-10-30T16:45:00.000Z" and rollback.name == "page.md"
        assert by_key[DEPLOYS].meta.section == ("Handbook",) and by_key[DEPLOYS].meta.tags == ()
        assert by_key[HANDBOOK].meta.section == ()

        assert by_key[HANDBOOK].content == HANDBOOK_MARKDOWN
        assert parse_markdown(str(by_key[HANDBOOK].content), Path("page.md")).title == "Handbook"

        # Every request carried the version; search and the query followed next_cursor (2 results a response).
        assert {r["version"] for r in state.requests} == {VERSION}
        searches = [(r["body"]["filter"]["value"], "start_cursor" in r["body"]) for r in state.requests[:3]]
        assert searches == [("page", False), ("page", True), ("database", False)]
        queries = [r["body"] for r in state.requests if r["path"] == f"/v1/databases/{RUNBOOKS}/query"]
        assert len(queries) == 2 and "start_cursor" in queries[1]
        handbook_reads = [r for r in state.requests if r["path"] == f"/v1/blocks/{HANDBOOK}/children"]
        assert len(handbook_reads) == 9  # 17 top-level blocks, 2 a response

        known = {key: KnownDocument(key, version=item.version) for key, item in by_key.items()}
        edited = state.pages[DEPLOYS]
        edited.edited, edited.blocks = "2026-11-05T08:00:00.000Z", [block("paragraph", "Tuesdays and Thursdays.")]
        state.add(NotionPage(RESTART, "Restart", ("database_id", RUNBOOKS), blocks=[block("paragraph", "Rarely.")]))
        del state.pages[FAILOVER]
        state.requests.clear()

        second = list(notion.walk(known))

    kinds = {item.key if not isinstance(item, Changed) else item.meta.key: type(item) for item in second}
    assert kinds == {HANDBOOK: Unchanged, DEPLOYS: Changed, ROLLBACK: Unchanged, RESTORE: Unchanged, RESTART: Changed}
    changed = {item.meta.key: item for item in second if isinstance(item, Changed)}
    assert changed[DEPLOYS].content == "# Deploys\n\nTuesdays and Thursdays."
    assert changed[DEPLOYS].version == "2026-11-05T08:00:00.000Z"
    assert changed[RESTART].meta.section == ("Handbook", "Runbooks")
    assert state.children_requests() == [DEPLOYS, RESTART]  # unchanged pages' blocks were never read


def test_a_page_whose_blocks_fail_is_failed_and_the_walk_goes_on() -> None:
    state = workspace()
    state.fail_blocks.add(DEPLOYS)
    with serve_fake_notion(state) as url, connector(url) as notion:
        items = list(notion.walk({}))
    failed = [item for item in items if isinstance(item, Failed)]
    assert [(f.key, f.url) for f in failed] == [(DEPLOYS, f"https://www.notion.so/Deploys-{DEPLOYS.replace('-', '')}")]
    assert "HTTP 500" in failed[0].reason
    changed = [item.meta.key for item in items if isinstance(item, Changed)]
    assert changed == [HANDBOOK, ROLLBACK, FAILOVER, RESTORE]


def test_a_rate_limit_is_waited_out_for_as_long_as_retry_after_says() -> None:
    state = workspace()
    state.throttle_once.update({"/v1/search", f"/v1/blocks/{ROLLBACK}/children"})
    sleeps: list[float] = []
    with serve_fake_notion(state) as url, connector(url, sleeps) as notion:
        items = list(notion.walk({}))
    assert sleeps == [3.0, 3.0]
    assert len(items) == 5 and all(isinstance(item, Changed) for item in items)
    assert "Roll back with acme rollout undo." in str(next(i for i in items if i.meta.key == ROLLBACK).content)


def test_a_refused_token_names_its_variable() -> None:
    state = workspace()
    with (
        serve_fake_notion(state) as url,
        connector(url, token="ntn_revoked") as notion,
        pytest.raises(SourceAuthError, match="NOTION_TOKEN"),
    ):
        list(notion.walk({}))


def test_a_missing_token_is_named_before_any_request() -> None:
    state = workspace()
    with (
        serve_fake_notion(state) as url,
        connector(url, token=None) as notion,
        pytest.raises(SourceAuthError, match="NOTION_TOKEN"),
    ):
        list(notion.walk({}))
    assert state.requests == []
