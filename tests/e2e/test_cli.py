"""`ragbot` as a user runs it: clear messages and non-zero exits for bad input, never a traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from retrieval.ingest import discover_files
from tests.conftest import SAMPLE_KB


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `ragbot ARGS` in-process through the real entry point (`bot.cli:main`)."""
    from bot.cli import main
    from bot.settings import get_settings

    get_settings.cache_clear()
    argv = sys.argv
    sys.argv = ["ragbot", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = argv
        get_settings.cache_clear()
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out, captured.err


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ask_prints_answer_sources_and_timings(env: Path, capsys) -> None:
    code, out, _ = run_cli(capsys, "ask", "Can we integrate single sign-on for this customer?", "--channel", "C123")
    assert code == 0
    assert "Sources" in out and "[1]" in out and "rerank 0." in out
    assert "preset default" in out and "rerank ok" in out
    assert "timings: embed" in out and "total" in out


def test_ask_json_through_the_installed_command(env: Path) -> None:
    command = Path(sys.executable).with_name("ragbot")
    assert command.exists(), "the `ragbot` console script is installed with the project"
    result = subprocess.run(
        [str(command), "ask", "如何导出全部数据？", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "RAGBOT_DEBUG": ""},
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["rerank"] == "ok" and data["answer"] and 1 <= len(data["citations"]) <= 3
    assert data["preset"]["name"] == "default" and isinstance(data["ranking_id"], int)
    assert len(data["candidates"]) == 20


def test_ask_json_citations_say_when_their_document_was_updated(env: Path, capsys, tmp_path: Path) -> None:
    docs = tmp_path / "dated"
    docs.mkdir()
    (docs / "refunds.md").write_text(
        "---\nupdated: 2026-11-03\n---\n# Refunds\n\nA refund of an invoice takes five days.", encoding="utf-8"
    )
    (docs / "plans.md").write_text("# Plans\n\nThe Business plan includes refunds on request.", encoding="utf-8")
    assert run_cli(capsys, "ingest", str(docs), "--collection", "dated")[0] == 0
    code, out, _ = run_cli(capsys, "ask", "How long does a refund take?", "--collection", "dated", "--json")
    assert code == 0
    citations = {c["title"]: c for c in json.loads(out)["citations"]}
    assert citations["Refunds"]["updated"] == "2026-11-03"
    assert set(citations["Refunds"]) == {"n", "title", "section", "source", "score", "updated"}
    assert all(c["updated"] is None for title, c in citations.items() if title != "Refunds")
    code, out, _ = run_cli(capsys, "ask", "How long does a refund take?", "--collection", "dated")
    assert "updated 2026-11-03" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ask", "   "], "The question is empty"),
        (["ask", "x" * 4001], "4,001 characters long; the limit is 4,000"),
        (["ingest", "/definitely/not/here"], "No such file or folder: /definitely/not/here"),
    ],
)
def test_bad_input_is_a_clear_error(env: Path, capsys, args: list[str], message: str) -> None:
    code, _, err = run_cli(capsys, *args)
    assert code == 1 and "Error:" in err and message in " ".join(err.split())


def test_a_corrupt_pdf_is_named_and_the_other_files_still_ingest(env: Path, capsys, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text("# Good\n\nThis page is fine.", encoding="utf-8")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj garbage")
    code, out, err = run_cli(capsys, "ingest", str(docs), "--collection", "fresh")
    assert code == 1
    assert "1 added" in out and "1 failed" in out
    assert "broken.pdf" in err and "not a readable PDF" in err
    code, out, _ = run_cli(capsys, "ingest", str(docs), "--collection", "fresh")
    assert "1 unchanged" in out and "0 added" in out


def test_files_of_other_types_are_counted_as_skipped(env: Path, capsys, tmp_path: Path) -> None:
    """A .csv or .png beside the documents used to vanish without a word; and one file is "1 file"."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text("# Good\n\nThis page is fine.", encoding="utf-8")
    (docs / "prices.csv").write_text("plan,price\npro,10\n", encoding="utf-8")
    (docs / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (docs / ".hidden.csv").write_text("x", encoding="utf-8")
    code, out, _ = run_cli(capsys, "ingest", str(docs), "--collection", "fresh")
    assert code == 0 and "Ingested 1 file into 'fresh'" in out
    line = next(line for line in out.splitlines() if "skipped:" in line)
    assert "2 other files" in line and ".csv, .png" in line and ".md" in line


def test_unloadable_embedding_model(env: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("EMBED_MODEL", str(env / "no-embedder"))
    code, _, err = run_cli(capsys, "ask", "What is SCIM?")
    assert code == 1 and "Cannot load the embedding model" in err and "EMBED_MODEL" in err


def test_qdrant_unreachable(env: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("QDRANT_URL", f"http://127.0.0.1:{closed_port()}")
    code, _, err = run_cli(capsys, "ask", "What is SCIM?")
    assert code == 1 and "Cannot reach the Qdrant server" in err and "QDRANT_URL" in err


def test_database_unreachable(env: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql+psycopg://ragbot:secret@127.0.0.1:{closed_port()}/ragbot")
    code, _, err = run_cli(capsys, "ask", "What is SCIM?")
    assert code == 1 and "Error:" in err and "secret" not in err


def test_required_reranker_that_cannot_load(env: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("RERANK_MODEL", str(env / "no-reranker"))
    code, out, err = run_cli(capsys, "ask", "What is SCIM?")
    assert code == 0 and "skipped: reranker unavailable" in " ".join(out.split())
    code, _, err = run_cli(capsys, "ask", "What is SCIM?", "--require-rerank")
    assert code == 1 and "Reranking is required" in err and "no-reranker" in " ".join(err.split())
    monkeypatch.setenv("RERANK_REQUIRED", "true")
    code, _, err = run_cli(capsys, "ask", "What is SCIM?")
    assert code == 1 and "Reranking is required" in err


def test_demo_ingests_the_sample_kb_and_answers_three_questions(
    capsys, monkeypatch, tmp_path: Path, tiny_reranker: Path
) -> None:
    monkeypatch.setenv("QDRANT_PATH", str(tmp_path / "qdrant"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'ragbot.db'}")
    monkeypatch.setenv("RERANK_MODEL", str(tiny_reranker))
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(capsys, "demo")
    assert code == 0
    files = len(discover_files(SAMPLE_KB))
    assert f"Sample knowledge base: {files} files" in out
    assert out.count("Sources") == 3 and out.count("rerank ok") == 3
    code, out, _ = run_cli(capsys, "demo")
    assert f"0 indexed now, {files} already there" in out


def test_invalid_configuration_names_the_variable(env: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("RERANK_DEVICE", "gpu")
    code, _, err = run_cli(capsys, "ask", "What is SCIM?")
    assert code == 1 and "Invalid configuration: RERANK_DEVICE='gpu'" in err and "'cuda'" in err
