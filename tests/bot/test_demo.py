"""`ragbot demo` kept apart (issue 17): the sample documents live in the collection and preset `demo`, never in
RAGBOT_COLLECTION, so `ragbot ingest DIR` and the real presets never meet them; an older demo's sample files leave
the default collection; `ragbot demo --remove` takes the demo away. Through the real command line, a real embedded
Qdrant and a SQLite database; the sample is a few files of sample_kb/ so that each run takes seconds."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import bot.cli.demo
from bot.cli.demo import DEMO_COLLECTION, DEMO_PRESET, demo_components
from retrieval import open_index
from tests.conftest import SAMPLE_KB
from tests.e2e.test_cli import run_cli

SAMPLE_FILES = ("sso/overview.md", "billing/fapiao-zh.md", "api/rate-limits.md")
SSO_QUESTION = "Can we integrate single sign-on for this customer?"
OWN_DOC = """---
title: Acme SSO runbook
---

# Acme SSO runbook

Single sign-on for Acme customers goes through our own Keycloak realm; open a ticket with the identity team.
"""


@pytest.fixture
def demo_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_reranker: Path) -> Path:
    """A fresh install: empty index and database, the demo's sample a small copy of sample_kb/."""
    sample = tmp_path / "home" / "sample_kb"
    for name in SAMPLE_FILES:
        (sample / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLE_KB / name, sample / name)
    monkeypatch.setattr(bot.cli.demo, "SAMPLE_KB", sample)
    monkeypatch.setenv("QDRANT_PATH", str(tmp_path / "qdrant"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'ragbot.db'}")
    monkeypatch.setenv("RERANK_MODEL", str(tiny_reranker))
    monkeypatch.setenv("RERANK_DEVICE", "cpu")
    for name in ("QDRANT_URL", "LLM_BASE_URL", "EMBED_MODEL", "RERANK_REQUIRED", "RAGBOT_COLLECTION"):
        monkeypatch.delenv(name, raising=False)
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    docs = tmp_path / "home" / "docs"
    docs.mkdir()
    (docs / "acme-sso.md").write_text(OWN_DOC, encoding="utf-8")
    return tmp_path


def files_in(env: Path, collection: str) -> set[str] | None:
    """The files a collection holds (None when it does not exist), read by a process of its own."""
    with open_index(None, str(env / "qdrant")) as index:
        if index.collection_info(collection) is None:
            return None
        return set(index.file_hashes(collection))


def sample_paths(env: Path) -> set[str]:
    return {(env / "home" / "sample_kb" / name).as_posix() for name in SAMPLE_FILES}


def own_doc(env: Path) -> str:
    return (env / "home" / "docs" / "acme-sso.md").as_posix()


def demo_preset(env: Path) -> Iterator[tuple[str, str | None]]:
    import sqlite3

    with sqlite3.connect(env / "ragbot.db") as db:
        yield from db.execute("SELECT name, collection FROM presets WHERE name = ?", (DEMO_PRESET,))


def test_the_demo_lives_in_its_own_collection_and_preset(demo_env: Path, capsys, embedder) -> None:
    code, out, _ = run_cli(capsys, "demo", "--no-serve")
    assert code == 0, out
    assert f"Sample knowledge base: 3 files in '{DEMO_COLLECTION}'" in out and "Removed" not in out
    assert out.count("preset demo v1") == 3  # the three sample questions, with the demo's preset
    assert files_in(demo_env, DEMO_COLLECTION) == sample_paths(demo_env)
    assert files_in(demo_env, "kb") is None  # RAGBOT_COLLECTION untouched
    assert list(demo_preset(demo_env)) == [(DEMO_PRESET, DEMO_COLLECTION)]  # visible in the admin's presets

    # the user's own documents: `ragbot ingest` writes RAGBOT_COLLECTION, the default preset searches only it
    code, out, _ = run_cli(capsys, "ingest", str(demo_env / "home" / "docs"))
    assert code == 0 and "into 'kb'" in out
    assert files_in(demo_env, "kb") == {own_doc(demo_env)}
    code, out, _ = run_cli(capsys, "ask", SSO_QUESTION, "--json")
    data = json.loads(out)
    assert code == 0 and data["preset"]["name"] == "default" and data["preset"]["collection"] == "kb"
    assert {c["title"] for c in data["candidates"]} == {"Acme SSO runbook"}
    assert data["citations"] and all(c["title"] == "Acme SSO runbook" for c in data["citations"])

    # while `ragbot demo` serves Slack, channels on the default preset answer from the demo; `ragbot serve`'s do not
    from bot.app import Components
    from bot.settings import Settings

    with Components(Settings(), embedder=embedder) as parts, demo_components(parts) as serving:
        assert parts.answers.preset().collection == "kb"
        assert serving.answers.preset().collection == DEMO_COLLECTION
        assert serving.index is parts.index and serving.settings.ragbot_collection == DEMO_COLLECTION

    # `ragbot demo --remove`: the demo's collection and preset go, the user's documents stay
    code, out, _ = run_cli(capsys, "demo", "--remove")
    assert code == 0 and f"Removed the collection '{DEMO_COLLECTION}' and the preset '{DEMO_PRESET}'." in out
    assert files_in(demo_env, DEMO_COLLECTION) is None and list(demo_preset(demo_env)) == []
    assert files_in(demo_env, "kb") == {own_doc(demo_env)}
    code, out, _ = run_cli(capsys, "demo", "--remove")
    assert code == 0 and "No demo to remove." in out


def test_an_older_demo_leaves_the_default_collection_and_your_documents_stay(demo_env: Path, capsys) -> None:
    # what an older `ragbot demo` left: the sample in RAGBOT_COLLECTION, next to the user's own documents
    assert run_cli(capsys, "ingest", str(demo_env / "home"))[0] == 0
    assert files_in(demo_env, "kb") == sample_paths(demo_env) | {own_doc(demo_env)}

    code, out, _ = run_cli(capsys, "demo", "--remove")
    assert code == 0 and "No demo to remove." in out
    assert "Removed the demo's 3 sample files that an older `ragbot demo` left in 'kb'" in " ".join(out.split())
    assert files_in(demo_env, "kb") == {own_doc(demo_env)}


def test_ingesting_your_documents_takes_an_older_demo_out_of_the_default_collection(demo_env: Path, capsys) -> None:
    assert run_cli(capsys, "ingest", str(demo_env / "home" / "sample_kb"))[0] == 0  # what an older demo left
    code, out, _ = run_cli(capsys, "ingest", str(demo_env / "home" / "docs"))
    assert code == 0 and "into 'kb'" in out
    assert "Removed the demo's 3 sample files that an older `ragbot demo` left in 'kb'" in " ".join(out.split())
    assert files_in(demo_env, "kb") == {own_doc(demo_env)}
    # into another collection, the default one is left as it is
    assert run_cli(capsys, "ingest", str(demo_env / "home" / "sample_kb"))[0] == 0
    code, out, _ = run_cli(capsys, "ingest", str(demo_env / "home" / "docs"), "--collection", "other")
    assert code == 0 and "Removed" not in out
    assert files_in(demo_env, "kb") == sample_paths(demo_env) | {own_doc(demo_env)}


def test_a_default_collection_that_held_only_the_old_demo_is_dropped(demo_env: Path, capsys) -> None:
    assert run_cli(capsys, "ingest", str(demo_env / "home" / "sample_kb"))[0] == 0
    code, out, _ = run_cli(capsys, "demo", "--remove")
    assert code == 0 and "Removed the demo's 3 sample files" in " ".join(out.split())
    assert files_in(demo_env, "kb") is None  # the next `ragbot ingest` creates it afresh


def test_a_preset_named_demo_that_searches_elsewhere_is_not_removed(demo_env: Path, embedder) -> None:
    from bot.answering import Presets
    from bot.app import Components
    from bot.settings import Settings

    with Components(Settings(), embedder=embedder) as parts:
        presets = Presets(parts.sessions, "kb")
        mine = presets.ensure(DEMO_PRESET, "kb")  # someone's own preset called "demo", on their documents
        assert presets.ensure(DEMO_PRESET, DEMO_COLLECTION) == mine  # an existing preset is left as it is
        assert not presets.remove(DEMO_PRESET, DEMO_COLLECTION)
        assert presets.resolve(name=DEMO_PRESET).collection == "kb"


def test_the_default_collection_may_not_be_the_demos(demo_env: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("RAGBOT_COLLECTION", DEMO_COLLECTION)
    code, _, err = run_cli(capsys, "demo", "--no-serve")
    assert code == 1 and "RAGBOT_COLLECTION='demo' is the demo's own collection" in " ".join(err.split())
    assert files_in(demo_env, DEMO_COLLECTION) is None
