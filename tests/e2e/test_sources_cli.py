"""`ragbot source add|list|remove` and `ragbot sync` as a user runs them, against a folder and a real website on
127.0.0.1: after each sync the collection holds exactly what the sources hold, answers cite the web page's URL,
bad input is one clear error, a source's database lock keeps a second process out, and `ragbot serve`'s background
scheduler syncs what is due."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.e2e.test_cli import run_cli
from tests.retrieval.sources.web_site import WebSite, html

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)
T1 = T0 + timedelta(days=3)


def collection_paths(prefix: str, collection: str = "kb") -> set[str]:
    """The documents of one source in the env's index (opened only while no ragbot command holds it)."""
    from retrieval import open_index

    with open_index(None, os.environ["QDRANT_PATH"]) as index:
        hashes = index.file_hashes(collection)
    assert all(hashes.values()), "no document is left half-written"
    return {path for path in hashes if path.startswith(prefix)}


def site_pages() -> dict[str, tuple[str | bytes, datetime | None]]:
    return {
        "/docs/": (html("Docs home", ["a", "b", "c"], body="The Zorblatt developer documentation."), T0),
        "/docs/a": (html("Webhooks", body="Zorblatt retries a failed webhook delivery seven times."), T0),
        "/docs/b": (html("Quotas", body="A Zorblatt workspace holds at most 900 projects."), T0),
        "/docs/c": (html("Regions", body="Zorblatt stores data in Frankfurt and Oregon."), T0),
    }


@pytest.fixture
def site() -> Iterator[WebSite]:
    with WebSite(site_pages(), sitemap="flat") as running:  # lastmod: an unchanged page costs no request
        yield running


@pytest.fixture
def handbook(env: Path) -> Path:
    folder = env / "handbook"
    folder.mkdir()
    (folder / "leave.md").write_text("# Leave\n\nEvery employee has 27 days of paid leave a year.\n")
    (folder / "laptops.md").write_text("# Laptops\n\nLaptops are replaced every three years.\n")
    return folder


def json_sources(capsys) -> dict[str, dict]:
    code, out, _ = run_cli(capsys, "source", "list", "--json")
    assert code == 0
    return {row["name"]: row for row in json.loads(out)}


def test_sources_through_add_list_sync_ask_and_remove(
    env: Path, handbook: Path, site: WebSite, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RERANK_URL", "http://127.0.0.1:9")  # closed: answers in retrieval order, not a random model's
    code, out, err = run_cli(capsys, "source", "add", "handbook", "--kind", "folder", "--path", str(handbook))
    assert code == 0, err
    assert "Added folder source 'handbook' feeding 'kb', every 1h" in " ".join(out.split())
    code, out, err = run_cli(
        capsys, "source", "add", "site", "--kind", "web", "--url", site.url("/docs/"), "--tag", "dev"
    )
    assert code == 0, err
    assert "Added web source 'site' feeding 'kb', every 6h" in " ".join(out.split())

    code, out, _ = run_cli(capsys, "source", "list")
    assert code == 0 and "handbook" in out and "site" in out and out.count("never synced") == 2
    rows = json_sources(capsys)
    assert rows["handbook"]["kind"] == "folder" and rows["handbook"]["settings"]["path"] == str(handbook)
    assert rows["site"]["settings"] == {"url": site.url("/docs/"), "tags": ["dev"]}
    assert rows["site"]["every_s"] == 6 * 3600 and rows["handbook"]["every_s"] == 3600
    assert rows["site"]["collection"] == "kb" and rows["site"]["documents"] == 0 and rows["site"]["last_sync"] is None

    code, out, err = run_cli(capsys, "sync", "handbook")
    assert code == 0, err
    assert "synced 'handbook'" in out and "2 added" in out
    code, out, err = run_cli(capsys, "sync", "--all")
    assert code == 0, err
    said = " ".join(out.split())
    assert "2 sources synced: 2 ok, 0 failed" in said and "4 added" in said and "2 unchanged" in said
    pages = {f"site:{site.url(p)}" for p in site.pages}
    assert collection_paths("site:") == pages
    assert collection_paths("handbook:") == {"handbook:leave.md", "handbook:laptops.md"}
    assert collection_paths("") > pages  # the sample knowledge base ingested before is still there

    code, out, _ = run_cli(capsys, "ask", "How many times does Zorblatt retry a webhook delivery?", "--json")
    assert code == 0
    assert site.url("/docs/a") in [citation["source"] for citation in json.loads(out)["citations"]]

    # both sources move on: an edit and a deletion each
    (handbook / "leave.md").write_text("# Leave\n\nEvery employee has 30 days of paid leave a year.\n")
    os.utime(handbook / "leave.md", (time.time() + 5, time.time() + 5))  # a new mtime even on a coarse clock
    (handbook / "laptops.md").unlink()
    site.pages["/docs/"] = (html("Docs home", ["a", "b"], body="The Zorblatt developer documentation."), T1)
    site.pages["/docs/b"] = (html("Quotas", body="A Zorblatt workspace now holds 2000 projects."), T1)
    del site.pages["/docs/c"]
    code, out, err = run_cli(capsys, "sync", "--all")
    assert code == 0, err
    said = " ".join(out.split())
    assert "synced 'handbook'" in said and "1 changed, 1 removed, 0 unchanged" in said
    assert "synced 'site'" in said and "2 changed, 1 removed, 1 unchanged" in said
    assert collection_paths("site:") == {f"site:{site.url(p)}" for p in ("/docs/", "/docs/a", "/docs/b")}
    assert collection_paths("handbook:") == {"handbook:leave.md"}
    rows = json_sources(capsys)
    assert rows["site"]["documents"] == 3 and rows["handbook"]["documents"] == 1
    assert rows["site"]["last_sync"]["status"] == "ok" and rows["site"]["last_sync"]["removed"] == 1

    code, out, err = run_cli(capsys, "source", "remove", "handbook")
    assert code == 0, err
    assert "stay in 'kb'" in " ".join(out.split())
    assert collection_paths("handbook:") == {"handbook:leave.md"}
    code, out, err = run_cli(capsys, "source", "remove", "site", "--purge")
    assert code == 0, err
    assert "and its 3 documents from 'kb'" in " ".join(out.split())
    assert collection_paths("site:") == set()
    assert set(json_sources(capsys)) == set()


def test_a_refused_site_fails_the_sync_and_removes_nothing(env: Path, site: WebSite, capsys) -> None:
    assert run_cli(capsys, "source", "add", "site", "--kind", "web", "--url", site.url("/docs/"))[0] == 0
    assert run_cli(capsys, "sync", "site")[0] == 0
    before = collection_paths("site:")
    assert len(before) == 4
    site.fail["/docs/"] = 401
    site.pages["/docs/"] = (html("Docs home", ["a"]), T1)  # its sitemap entry moved: the start page is asked for
    del site.pages["/docs/c"]
    code, out, err = run_cli(capsys, "sync", "site")
    assert code == 1
    assert "failed 'site'" in out and "nothing was removed" in " ".join(err.split())
    assert collection_paths("site:") == before
    assert json_sources(capsys)["site"]["last_sync"]["status"] == "failed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["source", "add", "x", "--kind", "ftp", "--path", "."], "'ftp' is not a source kind"),
        (["source", "add", "x", "--kind", "web"], "a web source needs --url"),
        (["source", "add", "x", "--kind", "folder"], "a folder source needs --path"),
        (["source", "add", "x", "--kind", "folder", "--path", "/definitely/not/here"], "no such folder"),
        (["source", "add", "x", "--kind", "web", "--url", "ftp://example.com"], "--url must be an http(s) address"),
        (
            [
                "source",
                "add",
                "x",
                "--kind",
                "zendesk",
                "--url",
                "https://a.zendesk.com",
                "--token-env",
                "xoxb-123-abc",
            ],
            "never the token itself",
        ),
        (["source", "add", "x", "--kind", "folder", "--path", ".", "--every", "5x"], "'5x' is not a duration"),
        (["source", "add", "x", "--kind", "folder", "--path", ".", "--every", "10s"], "'10s' is too often"),
        (["sync", "nope"], "No source named 'nope'"),
        (["source", "remove", "nope"], "No source named 'nope'"),
    ],
)
def test_bad_input_is_one_clear_error(env: Path, capsys, args: list[str], message: str) -> None:
    code, out, err = run_cli(capsys, *args)
    assert code != 0 and message in " ".join((out + err).split())
    assert set(json_sources(capsys)) == set()  # nothing was added


def test_duplicates_token_names_and_sync_without_names(env: Path, handbook: Path, capsys) -> None:
    add = ["source", "add", "hb", "--kind", "folder", "--path", str(handbook)]
    assert run_cli(capsys, *add)[0] == 0
    code, _, err = run_cli(capsys, *add)
    assert code == 1 and "Error:" in err and "hb" in err and err.strip().count("\n") == 0
    code, out, err = run_cli(
        capsys,
        "source",
        "add",
        "help",
        "--kind",
        "zendesk",
        "--url",
        "https://a.zendesk.com",
        "--token-env",
        "XOXB_123",
    )
    assert code == 0, err
    assert "its token is read from XOXB_123" in " ".join(out.split())
    code, _, err = run_cli(capsys, "sync")
    assert code == 2 and "name the sources to sync, or --all (sources: hb, help)" in " ".join(err.split())


LOCK_HOLDER = """
import sys, store
sessions = store.session_factory(store.make_engine(sys.argv[1]))
assert store.acquire_sync_lock(sessions, sys.argv[2], "other-process", float(sys.argv[3]))
print("locked", flush=True)
sys.stdin.readline()
store.release_sync_lock(sessions, sys.argv[2], "other-process")
print("released", flush=True)
"""


def hold_lock(name: str, lease_s: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, os.environ["DATABASE_URL"], name, str(lease_s)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_a_source_locked_by_another_process_is_not_synced_twice(env: Path, handbook: Path, capsys) -> None:
    assert run_cli(capsys, "source", "add", "hb", "--kind", "folder", "--path", str(handbook))[0] == 0
    holder = hold_lock("hb", 600)
    try:
        code, _, err = run_cli(capsys, "sync", "hb")
        assert code == 1 and "being synced by another process" in " ".join(err.split())
        assert collection_paths("hb:") == set()
        holder.communicate("go\n", timeout=30)  # it releases the lock and exits
    finally:
        holder.kill()
    assert holder.returncode == 0
    code, out, err = run_cli(capsys, "sync", "hb")
    assert code == 0 and "2 added" in out, err

    lease_s = 6.0  # long enough for the first sync below to start inside it on a busy machine
    crashed = hold_lock("hb", lease_s)  # killed without releasing: its lease runs out
    runs_out = time.monotonic() + lease_s
    crashed.kill()
    crashed.wait(10)
    code, _, err = run_cli(capsys, "sync", "hb")
    assert code == 1 and "being synced by another process" in " ".join(err.split())
    time.sleep(max(0.0, runs_out - time.monotonic()) + 0.5)
    code, out, err = run_cli(capsys, "sync", "hb")
    assert code == 0 and "2 unchanged" in out, err


def test_the_scheduler_syncs_requested_and_due_sources(components, handbook: Path) -> None:
    import store
    from bot.app.sources import SourceScheduler

    with components.sessions.begin() as session:
        for name, every_s in (("asked", None), ("hourly", 3600), ("idle", None)):
            store.add_source(
                session,
                name=name,
                kind="folder",
                settings={"path": str(handbook)},
                collection="kb",
                every_s=every_s,
            )
        assert store.request_sync(session, "asked")
    scheduler = SourceScheduler(components)
    reports = scheduler.run_due()
    assert sorted(report.source for report in reports) == ["asked", "hourly"]  # "idle" is neither asked nor due
    assert all(report.status == "ok" and len(report.added) == 2 for report in reports)
    with components.sessions() as session:
        assert store.source_named(session, "asked").sync_requested_at is None
    assert scheduler.run_due() == []  # the request is answered and "hourly" is not due for an hour

    with components.sessions.begin() as session:
        assert store.request_sync(session, "idle")
    scheduler = SourceScheduler(components, every_s=0.2)
    scheduler.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with components.sessions() as session:
                idle = store.source_named(session, "idle")
                history = store.sync_history(session, idle.id)
                if history and history[0].status != "running":
                    break
            time.sleep(0.2)
    finally:
        scheduler.stop()
    assert [sync.status for sync in history] == ["ok"] and history[0].added == 2
    assert scheduler.runs == 1
