"""`ragbot source add` and `ragbot sync` end to end, for each hosted source kind, against a local server on 127.0.0.1
that speaks that API's real shapes (tests/retrieval/sources/fake_*.py) and changes between syncs: documents added,
edited and deleted, one that fails to fetch (or, for Zendesk, whose listing carries the bodies, a listing that
fails), a token that is refused. After every sync the collection holds exactly what the source holds."""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from retrieval import open_index
from tests.e2e.test_cli import run_cli
from tests.retrieval.sources.fake_confluence import ConfluenceState, WikiPage, serve_fake_confluence
from tests.retrieval.sources.fake_github import FakeGitHub, blob_sha
from tests.retrieval.sources.fake_notion import NotionDatabase, NotionPage, NotionState, block, serve_fake_notion
from tests.retrieval.sources.fake_zendesk import FakeZendesk

NAME = "acme-docs"
EMAIL = "ana@acme.test"


@dataclass(frozen=True)
class Doc:
    """A document as the collection should hold it: its own URL (cited), title, tags, and a sentence of its text."""

    url: str
    title: str
    tags: frozenset[str]
    text: str


class Scenario:
    """One source kind's fake API, seeded with a few documents, and the changes a test makes to it. `texts` is the
    sentence each document's body holds now; keys are the API's own document ids (a repository path for GitHub)."""

    kind = ""
    token_env = ""
    token = ""
    edit_key = delete_key = fail_key = later_delete_key = ""
    per_document_fetch = True  # False: the listing carries the bodies (Zendesk): its listing is what fails

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}
        self.url = ""

    def serve(self) -> contextlib.AbstractContextManager[str]:
        raise NotImplementedError

    def add_args(self) -> list[str]:
        raise NotImplementedError

    def documents(self) -> dict[str, Doc]:
        """What the source holds now, read from the fake's own state."""
        raise NotImplementedError

    def add(self, text: str) -> str:
        raise NotImplementedError

    def edit(self, key: str, text: str) -> None:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def fail(self, key: str) -> None:
        """The next fetch of `key`'s content fails with HTTP 500 (per_document_fetch), else the next listing does."""
        raise NotImplementedError

    def heal(self) -> None:
        raise NotImplementedError

    def content_requests(self) -> list[str]:
        """Requests for a document's content (beyond the listing), since the log was cleared."""
        raise NotImplementedError

    def clear_requests(self) -> None:
        raise NotImplementedError


class Confluence(Scenario):
    kind, token_env, token = "confluence", "ACME_WIKI_TOKEN", "ATATT3xFfGF0-wiki"
    edit_key, delete_key, fail_key, later_delete_key = "102", "105", "103", "104"

    def __init__(self) -> None:
        super().__init__()
        self.state = ConfluenceState(email=EMAIL, token=self.token, spaces={"ENG": "Engineering"})
        self.ticks = 0
        seed = [
            ("101", "Handbook", None, ("onboarding",), "How we work at Acme."),
            ("102", "Deploys", "101", (), "Deploys run on Tuesdays."),
            ("103", "Rollback", "102", ("runbook", "ops"), "Roll back with acme rollout undo."),
            ("104", "Pricing FAQ", None, (), "Seats are billed monthly."),
            ("105", "Old notes", None, (), "Obsolete fax procedures."),
        ]
        for page_id, title, parent, labels, text in seed:
            self.state.add(WikiPage(page_id, "ENG", title, f"<p>{text}</p>", parent=parent, labels=labels))
            self.texts[page_id] = text

    @contextlib.contextmanager
    def serve(self) -> Iterator[str]:
        with serve_fake_confluence(self.state) as url:
            self.url = url
            yield url

    def add_args(self) -> list[str]:
        return ["--url", self.url, "--space", "ENG", "--email", EMAIL]

    def documents(self) -> dict[str, Doc]:
        return {
            page.id: Doc(
                f"{self.url}/spaces/ENG/pages/{page.id}/{page.title.replace(' ', '+')}",
                page.title,
                frozenset(page.labels),
                self.texts[page.id],
            )
            for page in self.state.pages.values()
        }

    def add(self, text: str) -> str:
        self.state.add(WikiPage("106", "ENG", "Incident review", f"<p>{text}</p>", parent="101", labels=("ops",)))
        self.texts["106"] = text
        return "106"

    def edit(self, key: str, text: str) -> None:
        self.ticks += 1
        self.state.edit(key, f"<p>{text}</p>", when=f"2026-11-05T08:{self.ticks:02d}:00.000Z")
        self.texts[key] = text

    def delete(self, key: str) -> None:
        del self.state.pages[key]

    def fail(self, key: str) -> None:
        self.state.fail_body.add(key)

    def heal(self) -> None:
        self.state.fail_body.clear()

    def content_requests(self) -> list[str]:
        return self.state.body_requests()

    def clear_requests(self) -> None:
        with self.state.lock:
            self.state.requests.clear()


HANDBOOK = "0c5e1f5a-1111-4a8e-9d2a-000000000001"
DEPLOYS = "0c5e1f5a-2222-4a8e-9d2a-000000000002"
RUNBOOKS = "7d0b7e44-3333-4c1f-8d9e-000000000003"
ROLLBACK, FAILOVER, RESTORE, RESTART = (f"9a1c2b3d-44{n}-4e5f-8a9b-0000000000{n}" for n in ("41", "42", "43", "44"))


class Notion(Scenario):
    kind, token_env, token = "notion", "ACME_NOTION_TOKEN", "ntn_4187520924a1xLsyHGxfDmQ4"
    edit_key, delete_key, fail_key, later_delete_key = DEPLOYS, FAILOVER, ROLLBACK, RESTORE

    def __init__(self) -> None:
        super().__init__()
        self.state = NotionState(token=self.token)
        self.ticks = 0
        self.state.databases[RUNBOOKS] = NotionDatabase(RUNBOOKS, "Runbooks", ("page_id", HANDBOOK))
        row = ("database_id", RUNBOOKS)
        seed = [
            (HANDBOOK, "Handbook", ("workspace", ""), (), "How we work at Acme."),
            (DEPLOYS, "Deploys", ("page_id", HANDBOOK), (), "Deploys run on Tuesdays."),
            (ROLLBACK, "Rollback", row, ("ops", "api"), "Roll back with acme rollout undo."),
            (FAILOVER, "Failover", row, ("ops",), "Promote the replica."),
            (RESTORE, "Restore", row, (), "Restore from last night's snapshot."),
        ]
        for page_id, title, parent, tags, text in seed:
            self.state.add(NotionPage(page_id, title, parent, blocks=[block("paragraph", text)], tags=tags))
            self.texts[page_id] = text

    @contextlib.contextmanager
    def serve(self) -> Iterator[str]:
        with serve_fake_notion(self.state) as url:
            self.url = url
            yield url

    def add_args(self) -> list[str]:
        return ["--url", self.url]

    def documents(self) -> dict[str, Doc]:
        return {
            page.id: Doc(
                f"https://www.notion.so/{page.title.replace(' ', '-')}-{page.id.replace('-', '')}",
                page.title,
                frozenset(page.tags),
                self.texts[page.id],
            )
            for page in self.state.pages.values()
        }

    def add(self, text: str) -> str:
        row = ("database_id", RUNBOOKS)
        self.state.add(NotionPage(RESTART, "Restart", row, blocks=[block("paragraph", text)], tags=("api",)))
        self.texts[RESTART] = text
        return RESTART

    def edit(self, key: str, text: str) -> None:
        self.ticks += 1
        page = self.state.pages[key]
        page.edited, page.blocks = f"2026-11-05T08:{self.ticks:02d}:00.000Z", [block("paragraph", text)]
        self.texts[key] = text

    def delete(self, key: str) -> None:
        del self.state.pages[key]

    def fail(self, key: str) -> None:
        self.state.fail_blocks.add(key)

    def heal(self) -> None:
        self.state.fail_blocks.clear()

    def content_requests(self) -> list[str]:
        return self.state.children_requests()

    def clear_requests(self) -> None:
        with self.state.lock:
            self.state.requests.clear()


ARTICLES = "/api/v2/help_center/articles.json"


class Zendesk(Scenario):
    kind, token_env, token = "zendesk", "ACME_ZENDESK_TOKEN", "zd-api-token-1"
    edit_key, delete_key, fail_key, later_delete_key = "101", "103", "", "100"
    per_document_fetch = False

    def __init__(self) -> None:
        super().__init__()
        self.fake: FakeZendesk | None = None

    @contextlib.contextmanager
    def serve(self) -> Iterator[str]:
        fake = self.fake = FakeZendesk(email=EMAIL, token=self.token)
        try:
            fake.add_category(1, "Billing")
            fake.add_section(10, "Invoices", 1)
            fake.add_section(11, "Refunds", 1, parent_section_id=10)
            seed = [
                (100, "Download an invoice", 10, (), "Open Billing and press Download."),
                (101, "Refund window", 11, ("refund", "policy"), "Refunds are possible within 30 days."),
                (103, "VAT numbers", 10, ("tax",), "Add your VAT number on the invoice page."),
            ]
            for article_id, title, section, labels, text in seed:
                fake.add_article(article_id, title, f"<p>{text}</p>", section, labels=labels)
                self.texts[str(article_id)] = text
            fake.add_article(102, "Unreleased plan", "<p>Secret pricing.</p>", 10, draft=True)  # not published
            self.url = fake.url
            yield fake.url
        finally:
            fake.close()

    def add_args(self) -> list[str]:
        return ["--url", self.url, "--email", EMAIL]

    def documents(self) -> dict[str, Doc]:
        assert self.fake is not None
        return {
            str(article["id"]): Doc(
                article["html_url"], article["title"], frozenset(article["label_names"]), self.texts[str(article["id"])]
            )
            for article in self.fake.articles.values()
            if not article["draft"]
        }

    def add(self, text: str) -> str:
        assert self.fake is not None
        self.fake.add_article(104, "Credit notes", f"<p>{text}</p>", 10, labels=("refund",))
        self.texts["104"] = text
        return "104"

    def edit(self, key: str, text: str) -> None:
        assert self.fake is not None
        self.fake.edit_article(int(key), f"<p>{text}</p>")
        self.texts[key] = text

    def delete(self, key: str) -> None:
        assert self.fake is not None
        self.fake.delete_article(int(key))

    def fail(self, key: str) -> None:
        assert self.fake is not None
        self.fake.fail(ARTICLES, 500)  # answered once: the next sync's listing

    def heal(self) -> None:
        assert self.fake is not None
        self.fake.faults.clear()

    def content_requests(self) -> list[str]:
        """The listings carry the bodies: anything else asked for would be a per-article fetch."""
        assert self.fake is not None
        listings = {ARTICLES, "/api/v2/help_center/sections.json", "/api/v2/help_center/categories.json"}
        return [path for path in self.fake.paths() if path not in listings]

    def clear_requests(self) -> None:
        assert self.fake is not None
        self.fake.requests.clear()


GITHUB_TITLES = {  # each file's first heading: the title its Markdown gives it
    "docs/guide/install.md": "Install",
    "docs/faq.md": "FAQ",
    "docs/pricing.md": "Pricing",
    "docs/old.md": "Old notes",
    "docs/new.md": "Incident review",
}


class GitHub(Scenario):
    kind, token_env, token = "github", "ACME_GITHUB_TOKEN", "ghp_acme_docs_token"
    edit_key, delete_key, fail_key = "docs/faq.md", "docs/old.md", "docs/guide/install.md"
    later_delete_key = "docs/pricing.md"

    def __init__(self) -> None:
        super().__init__()
        self.fake: FakeGitHub | None = None

    @contextlib.contextmanager
    def serve(self) -> Iterator[str]:
        fake = self.fake = FakeGitHub(token=self.token)
        try:
            fake.commit_file("README.md", b"# Handbook\n\nOutside docs/: not part of the source.\n")
            seed = {
                "docs/guide/install.md": "Run acme install on a machine with 4 GB of memory.",
                "docs/faq.md": "Can I pay yearly? Yes.",
                "docs/pricing.md": "Seats are billed monthly.",
                "docs/old.md": "Obsolete fax procedures.",
            }
            for path, text in seed.items():
                self._commit(path, text)
            self.url = fake.url
            yield fake.url
        finally:
            fake.close()

    def _commit(self, path: str, text: str) -> None:
        assert self.fake is not None
        self.fake.commit_file(path, self._bytes(path, text))
        self.texts[path] = text

    def _bytes(self, path: str, text: str) -> bytes:
        return f"# {GITHUB_TITLES[path]}\n\n{text}\n".encode()

    def add_args(self) -> list[str]:
        return ["--url", self.url, "--repo", "acme/handbook", "--branch", "main", "--path", "docs"]

    def documents(self) -> dict[str, Doc]:
        assert self.fake is not None
        return {
            path: Doc(f"{self.url}/acme/handbook/blob/main/{path}", GITHUB_TITLES[path], frozenset(), self.texts[path])
            for path in self.fake.branches["main"]
            if path.startswith("docs/")
        }

    def add(self, text: str) -> str:
        self._commit("docs/new.md", text)
        return "docs/new.md"

    def edit(self, key: str, text: str) -> None:
        self._commit(key, text)

    def delete(self, key: str) -> None:
        assert self.fake is not None
        self.fake.delete_file(key)

    def fail(self, key: str) -> None:
        assert self.fake is not None
        data = self.fake.branches["main"][key]
        self.fake.fail(f"/repos/acme/handbook/git/blobs/{blob_sha(data)}", 500)  # answered once

    def heal(self) -> None:
        assert self.fake is not None
        self.fake.faults.clear()

    def content_requests(self) -> list[str]:
        assert self.fake is not None
        return [path for path in self.fake.paths() if "/git/blobs/" in path or path.endswith("/commits")]

    def clear_requests(self) -> None:
        assert self.fake is not None
        self.fake.requests.clear()


@pytest.fixture
def reuse_embedders(monkeypatch: pytest.MonkeyPatch, embedders: list) -> None:
    """Each `ragbot` command loads its embedders as a process does, but from the session's loaded copies (about
    8 s a load otherwise), through the same model selection."""
    import bot.app.components as components

    load = components.load_embedders

    def reuse(*args: Any, loaded: Sequence[Any] = (), **kwargs: Any) -> list[Any]:
        return load(*args, loaded=[*loaded, *embedders], **kwargs)

    monkeypatch.setattr(components, "load_embedders", reuse)


def held(collection: str = "kb") -> dict[str, Doc]:
    """The source's documents in the collection, read from the embedded index (no command holds it now): one `Doc`
    per path, after checking every chunk of it says the same URL, title and tags."""
    docs: dict[str, list[dict]] = {}
    with open_index(None, os.environ["QDRANT_PATH"]) as index:
        offset = None
        while True:
            payloads, offset = index.scroll_payloads(
                collection, ["path", "source", "title", "tags", "text", "chunk_index"], offset
            )
            for payload in payloads:
                if payload["path"].startswith(f"{NAME}:"):
                    docs.setdefault(payload["path"][len(NAME) + 1 :], []).append(dict(payload))
            if offset is None:
                break
    found = {}
    for key, chunks in docs.items():
        chunks.sort(key=lambda chunk: chunk["chunk_index"])
        first = chunks[0]
        assert first["chunk_index"] == 0, f"{key}: chunk 0 missing"
        for chunk in chunks:
            assert (chunk["source"], chunk["title"], chunk.get("tags")) == (
                first["source"],
                first["title"],
                first.get("tags"),
            )
        text = "\n".join(chunk["text"] for chunk in chunks)
        found[key] = Doc(first["source"], first["title"], frozenset(first.get("tags") or ()), text)
    return found


def assert_holds(found: dict[str, Doc], expected: dict[str, Doc]) -> None:
    """The collection holds exactly the source's documents, each with its URL, title, tags and current text."""
    assert set(found) == set(expected)
    for key, doc in expected.items():
        assert (found[key].url, found[key].title, found[key].tags) == (doc.url, doc.title, doc.tags), key
        assert doc.text in found[key].text, key


def sync(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code, out, err = run_cli(capsys, "sync", NAME)
    return code, " ".join((out + "\n" + err).split())


def last_sync(capsys: pytest.CaptureFixture[str]) -> dict:
    code, out, _ = run_cli(capsys, "source", "list", "--json")
    assert code == 0
    (row,) = json.loads(out)
    return row["last_sync"]


@pytest.mark.parametrize("scenario_type", [Confluence, Notion, Zendesk, GitHub], ids=lambda s: s.kind)
def test_a_source_that_changes_between_syncs(
    env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    reuse_embedders: None,
    scenario_type: type[Scenario],
) -> None:
    source = scenario_type()
    monkeypatch.setenv(source.token_env, source.token)
    with source.serve():
        code, out, err = run_cli(
            capsys, "source", "add", NAME, "--kind", source.kind, *source.add_args(), "--token-env", source.token_env
        )
        assert code == 0, err
        assert "feeding 'kb'" in out and f"its token is read from {source.token_env}" in " ".join(out.split())

        # The first sync reads everything.
        code, said = sync(capsys)
        assert code == 0, said
        first = source.documents()
        assert f"{len(first)} added, 0 changed, 0 removed, 0 unchanged, 0 failed" in said
        assert_holds(held(), first)

        # Nothing changed: no document's content is asked for and nothing is written.
        source.clear_requests()
        code, said = sync(capsys)
        assert code == 0, said
        assert f"0 added, 0 changed, 0 removed, {len(first)} unchanged, 0 failed; 0 chunks written" in said
        assert source.content_requests() == []
        assert_holds(held(), first)

        # The source changes: one added, one edited, one deleted, and one whose fetch fails.
        old_edit, new_edit = source.texts[source.edit_key], "Deploys moved to Thursdays after the freeze."
        added = source.add("Incident reviews are blameless and happen within a week.")
        source.edit(source.edit_key, new_edit)
        source.delete(source.delete_key)
        if source.per_document_fetch:
            old_fail, new_fail = source.texts[source.fail_key], "Rewritten but never fetched."
            source.edit(source.fail_key, new_fail)
            source.fail(source.fail_key)
            code, said = sync(capsys)
            assert code == 0, said
            assert "1 added, 1 changed, 1 removed" in said and "1 failed" in said
            assert re.search(rf"failed: {re.escape(source.fail_key)}: .*?HTTP 500.*?\(kept as it was\)", said), said
            found, now = held(), source.documents()
            assert_holds(found, {**now, source.fail_key: replace(now[source.fail_key], text=old_fail)})
            assert new_fail not in found[source.fail_key].text  # kept with its old text
            assert old_edit not in found[source.edit_key].text and added in found
            errors = last_sync(capsys)["errors"]
            assert list(errors) == [source.fail_key] and "HTTP 500" in errors[source.fail_key]
            source.heal()  # the next sync fetches it
            expected_line = "0 added, 1 changed, 0 removed"
        else:
            # The listing carries the bodies: a failed listing fails the sync, and nothing is added or removed.
            source.fail(source.fail_key)
            code, said = sync(capsys)
            assert code == 1, said
            assert "HTTP 500" in said and "nothing was removed" in said
            assert_holds(held(), first)
            sync_row = last_sync(capsys)
            assert sync_row["status"] == "failed" and "HTTP 500" in sync_row["error"]
            expected_line = "1 added, 1 changed, 1 removed"
        code, said = sync(capsys)
        assert code == 0, said
        assert expected_line in said and "0 failed" in said
        found = held()
        assert_holds(found, source.documents())
        assert old_edit not in found[source.edit_key].text and new_edit in found[source.edit_key].text
        assert source.delete_key not in found

        # A refused token fails the sync, names its variable, and leaves the collection as it was (a document
        # deleted meanwhile is not removed on the word of a walk that never happened).
        before = found
        source.delete(source.later_delete_key)
        monkeypatch.setenv(source.token_env, "revoked-" + source.token)
        code, said = sync(capsys)
        assert code == 1, said
        assert source.token_env in said and "nothing was removed" in said
        assert held() == before
        assert last_sync(capsys)["status"] == "failed"
