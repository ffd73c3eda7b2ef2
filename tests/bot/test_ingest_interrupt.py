"""`ragbot ingest` as a real process with its output going to pipes (a log file, CI): plain progress lines as
it goes, Ctrl-C (a real SIGINT) keeps the finished files and says so, and files over INGEST_MAX_FILE_MB are named
with their size and the limit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.ingest_memory import write_text

RAGBOT = Path(sys.executable).with_name("ragbot")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.retrieval.test_ingest_stream import write_tiny_embedder

    return write_tiny_embedder(tmp_path_factory.mktemp("tiny-embedder") / "model")


@pytest.fixture
def ragbot_env(tmp_path: Path, tiny_model: Path) -> dict[str, str]:
    keep = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    return {
        **keep,
        "QDRANT_PATH": str(tmp_path / "qdrant"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'ragbot.db'}",
        "EMBED_MODEL": str(tiny_model),
        "EMBED_DEVICE": "cpu",
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }


def test_ctrl_c_keeps_finished_files_and_the_next_run_continues(tmp_path: Path, ragbot_env: dict[str, str]) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nSingle sign-on uses SAML.\n", encoding="utf-8")
    (docs / "b.md").write_text("# B\n\nExports run nightly.\n", encoding="utf-8")
    write_text(docs / "m_big.txt", 0.6)
    (docs / "z.md").write_text("# Z\n\nThe API allows 100 requests a minute.\n", encoding="utf-8")

    process = subprocess.Popen(
        [str(RAGBOT), "ingest", str(docs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ragbot_env,
        cwd=tmp_path,
    )
    seen: list[tuple[float, str]] = []
    started = time.monotonic()
    assert process.stdout is not None
    for line in process.stdout:  # lines arrive while it runs: they are flushed one by one
        seen.append((time.monotonic() - started, line))
        if "m_big.txt:" in line and "chunks" in line:
            process.send_signal(signal.SIGINT)
            break
    rest, errors = process.communicate(timeout=120)
    output = "".join(line for _, line in seen) + rest

    assert process.returncode == 130, output + errors
    assert "Traceback" not in output + errors
    assert "[1/4] added: " in output and "[2/4] added: " in output and "b.md" in output
    assert "m_big.txt: 256/" in output and "%)" in output
    message = " ".join(errors.split())
    assert "Interrupted: kept 2 files" in message and "in 'kb'; 2 not done (m_big.txt was cut off" in message
    assert "run the same command again to continue" in message

    again = subprocess.run(
        [str(RAGBOT), "ingest", str(docs)], capture_output=True, text=True, env=ragbot_env, cwd=tmp_path, timeout=300
    )
    assert again.returncode == 0, again.stdout + again.stderr
    lines = again.stdout.splitlines()
    assert any(line.startswith("[1/4] unchanged: ") and line.split()[2].endswith("a.md") for line in lines)
    assert any(line.startswith("[3/4] added: ") and line.split()[2].endswith("m_big.txt") for line in lines)
    assert "2 added, 0 updated, 2 unchanged" in again.stdout


def test_a_file_over_ingest_max_file_mb_is_named_with_its_size_and_the_limit(
    tmp_path: Path, ragbot_env: dict[str, str]
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "small.md").write_text("# Small\n\nFine.\n", encoding="utf-8")
    (docs / "big.txt").write_text("word " * 400, encoding="utf-8")  # 2,000 bytes

    result = subprocess.run(
        [str(RAGBOT), "ingest", str(docs)],
        capture_output=True,
        text=True,
        env={**ragbot_env, "INGEST_MAX_FILE_MB": "0.001"},
        cwd=tmp_path,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 added" in result.stdout and "1 too large" in result.stdout
    assert "too large: " in result.stdout  # the progress line of that file
    message = " ".join(result.stderr.split())
    assert "big.txt: 2.0 KB is over the 0.001 MB limit (INGEST_MAX_FILE_MB)" in message
    assert "Traceback" not in result.stdout + result.stderr
