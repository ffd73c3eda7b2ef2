"""The configuration mistakes a new user makes (issue 17), each through the real `ragbot` entry point: one clear
line naming the variable and what to do, a non-zero exit, no traceback and no "please report it"."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_cli import closed_port, run_cli

# Settings a mistake may be made in; cleared so the machine's own environment cannot mask or cause one.
_CONFIG = (
    "RAGBOT_COLLECTION",
    "QDRANT_URL",
    "QDRANT_PATH",
    "DATABASE_URL",
    "EMBED_MODEL",
    "EMBED_DEVICE",
    "CHUNK_TOKENS",
    "CHUNK_OVERLAP_TOKENS",
    "RERANK_URL",
    "RERANK_REQUIRED",
    "LLM_BASE_URL",
    "RAGBOT_DEBUG",
)


@pytest.fixture
def blank(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A working folder of its own (no `.env`), its own database and index folder, nothing else configured."""
    for name in _CONFIG:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'ragbot.db'}")
    monkeypatch.setenv("QDRANT_PATH", str(tmp_path / "qdrant"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def one_clear_line(code: int, out: str, err: str) -> str:
    """The single error line of a refused command (asserting what every mistake must look like)."""
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert code == 1, (code, out, err)
    assert len(lines) == 1, lines
    assert "Traceback" not in err and "please report" not in err and "Unexpected error" not in err
    assert lines[0].startswith("Error: ")
    return lines[0]


def torch_has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        ("RAGBOT_COLLECTION", "", ["RAGBOT_COLLECTION=''", "not a collection name", "e.g. kb"]),
        ("RAGBOT_COLLECTION", "   ", ["RAGBOT_COLLECTION='   '", "not a collection name"]),
        ("RAGBOT_COLLECTION", "../kb", ["RAGBOT_COLLECTION='../kb'", "not a collection name"]),
        ("QDRANT_PATH", "/proc/nope", ["QDRANT_PATH=/proc/nope cannot be created", "set QDRANT_PATH"]),
        ("DATABASE_URL", "garbage", ["DATABASE_URL is not a database URL", "Set DATABASE_URL to"]),
        ("DATABASE_URL", "mysql://ragbot@db/ragbot", ["DATABASE_URL=mysql://", "MySQLdb", "Set DATABASE_URL"]),
        ("DATABASE_URL", "nosuchdb://x/y", ["DATABASE_URL=nosuchdb://x/y cannot be used", "Set DATABASE_URL"]),
        ("EMBED_DEVICE", "gpu", ["EMBED_DEVICE='gpu'", "'auto', 'cpu' or 'cuda'"]),
        ("CHUNK_OVERLAP_TOKENS", "500", ["CHUNK_OVERLAP_TOKENS (500) must be smaller than CHUNK_TOKENS (300)"]),
    ],
)
def test_a_configuration_mistake_is_one_clear_line(
    blank: Path, capsys, monkeypatch, setting: str, value: str, expected: list[str]
) -> None:
    monkeypatch.setenv(setting, value)
    line = one_clear_line(*run_cli(capsys, "ask", "How do I export data?"))
    for text in expected:
        assert text in line, line
    assert "EMBED_MODEL" not in line  # the old advice for every device mistake


def test_chunk_overlap_equal_to_chunk_size_is_refused_by_ingest_too(blank: Path, capsys, monkeypatch) -> None:
    (blank / "docs").mkdir()
    (blank / "docs" / "a.md").write_text("# A\n\nSome text.", encoding="utf-8")
    monkeypatch.setenv("CHUNK_TOKENS", "200")
    monkeypatch.setenv("CHUNK_OVERLAP_TOKENS", "200")
    line = one_clear_line(*run_cli(capsys, "ingest", "docs"))
    assert "CHUNK_OVERLAP_TOKENS (200) must be smaller than CHUNK_TOKENS (200)" in line
    assert not (blank / "qdrant" / "kb").exists()  # refused before anything was written


def test_a_qdrant_path_that_is_a_file_is_one_clear_line(blank: Path, capsys, monkeypatch) -> None:
    (blank / "afile").write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("QDRANT_PATH", "afile/qdrant")  # relative: the message says which folder that was
    line = one_clear_line(*run_cli(capsys, "ask", "How do I export data?"))
    assert f"QDRANT_PATH={blank.resolve() / 'afile' / 'qdrant'} cannot be created" in line


def test_database_mistake_keeps_the_password_out(blank: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://ragbot:hunter2@db/ragbot")
    line = one_clear_line(*run_cli(capsys, "ask", "How do I export data?"))
    assert "hunter2" not in line and "DATABASE_URL=" in line


def test_a_sqlite_file_that_cannot_be_made_is_named_absolute(blank: Path, capsys, monkeypatch) -> None:
    (blank / "afile").write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("DATABASE_URL", "sqlite:///afile/ragbot.db")
    line = one_clear_line(*run_cli(capsys, "ask", "How do I export data?"))
    assert f"file {blank.resolve() / 'afile' / 'ragbot.db'}" in line and "DATABASE_URL" in line


@pytest.mark.skipif(torch_has_cuda(), reason="this torch has CUDA: EMBED_DEVICE=cuda is not a mistake here")
def test_embed_device_cuda_without_cuda(blank: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("EMBED_DEVICE", "cuda")
    line = one_clear_line(*run_cli(capsys, "ask", "How do I export data?"))
    assert "EMBED_DEVICE=cuda but this torch" in line and "has no CUDA" in line
    assert "set EMBED_DEVICE=cpu or auto, or install a CUDA build of torch" in line
    assert "EMBED_MODEL" not in line


@pytest.mark.skipif(torch_has_cuda(), reason="this torch has CUDA: RERANK_DEVICE=cuda is not a mistake here")
def test_rerank_device_cuda_without_cuda_when_reranking_is_required(env: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("RERANK_DEVICE", "cuda")
    line = one_clear_line(*run_cli(capsys, "ask", "What is SCIM?", "--require-rerank"))
    assert "RERANK_DEVICE=cuda but this torch" in line and "set RERANK_DEVICE=cpu or auto" in line


def test_a_closed_rerank_url_still_answers_with_one_warning_line(env: Path) -> None:
    """The installed command as a user runs it, so what logging prints is what a terminal shows."""
    command = Path(sys.executable).with_name("ragbot")
    result = subprocess.run(
        [str(command), "ask", "How do I export all data?"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "RERANK_URL": f"http://127.0.0.1:{closed_port()}", "RAGBOT_DEBUG": ""},
    )
    assert result.returncode == 0, result.stderr
    assert "Sources" in result.stdout and "[1]" in result.stdout
    assert "rerank skipped: reranker failed" in " ".join(result.stdout.split())
    stderr = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    warnings = [line for line in stderr if "Reranking failed" in line]
    assert len(warnings) == 1, stderr
    assert warnings[0].startswith("WARNING ") and "answering in retrieval order" in warnings[0]
    assert "cannot connect" in warnings[0]


def test_ask_collection_searches_that_collection(env: Path, capsys) -> None:
    # The sample KB under another name, and no "kb": the preset's collection would fail, --collection answers.
    shutil.move(env / "qdrant" / "kb", env / "qdrant" / "manuals")
    code, _, err = run_cli(capsys, "ask", "How do I export all data?")
    assert code == 1 and "Collection 'kb' is empty or does not exist" in err
    assert str((env / "qdrant").resolve()) in err  # the folder named absolute
    code, out, err = run_cli(capsys, "ask", "How do I export all data?", "--collection", "manuals")
    assert code == 0, err
    assert "Sources" in out and "[1]" in out


def test_ask_collection_with_a_bad_name_is_one_clear_line(env: Path, capsys) -> None:
    line = one_clear_line(*run_cli(capsys, "ask", "How do I export all data?", "--collection", "../kb"))
    assert "--collection '../kb'" in line and "not a collection name" in line


def test_ingest_collection_with_a_bad_name_is_one_clear_line(env: Path, capsys) -> None:
    line = one_clear_line(*run_cli(capsys, "ingest", str(env), "--collection", "../kb"))
    assert "--collection '../kb'" in line and "not a collection name" in line


def test_ask_from_a_folder_without_data_creates_nothing_and_says_where_it_looked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    # The defaults (./data/qdrant, ./data/ragbot.db) from a folder where nothing was ever ingested.
    for name in (*_CONFIG, "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    line = one_clear_line(*run_cli(capsys, "ask", "How do I export all data?"))
    assert f"No ragbot data at QDRANT_PATH={(tmp_path / 'data' / 'qdrant').resolve()}" in line
    assert "QDRANT_PATH and DATABASE_URL to absolute paths" in line
    assert list(tmp_path.iterdir()) == []  # no empty store or database left behind
