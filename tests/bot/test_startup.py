"""Commands start without the model stack: `python -X importtime` on the CLI entry, in a fresh interpreter, lists
every module a command imported; torch, transformers and sentence-transformers must not be among them until a
model is needed (they cost seconds, `ragbot --help` paid 6 s)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "sentence_transformers")
ENTRY = "import sys; from bot.cli import main; sys.argv = ['ragbot', *sys.argv[1:]]; main()"


def imported_modules(args: list[str], env: dict[str, str]) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", ENTRY, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    names = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)$", done.stderr, re.M))
    return names, done


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("RAGBOT_", "RERANK_", "EMBED_"))}
    environment.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'ragbot.db'}",
        QDRANT_PATH=str(tmp_path / "qdrant"),
        RANKING_SPOOL_DIR=str(tmp_path / "spool"),
        PYTHONPATH=str(ROOT),
    )
    return environment


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["ask", "--help"],
        ["ingest", "--help"],
        ["eval", "--help"],
        ["db", "upgrade"],
        ["ask", "   "],  # refused before anything is loaded
    ],
    ids=" ".join,
)
def test_a_command_starts_without_the_model_stack(args: list[str], env: dict[str, str]) -> None:
    names, done = imported_modules(args, env)
    assert "bot.cli" in names, done.stderr[-2000:]  # the check saw the entry's imports
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    heavy = sorted(name for name in names if name.split(".")[0] in HEAVY)
    assert not heavy, f"ragbot {' '.join(args)} imported {heavy[:5]}"


def test_the_check_sees_the_model_stack_when_a_command_loads_it(env: dict[str, str]) -> None:
    # `ragbot ask` with a question loads the embedder: the same parse must then find torch.
    names, done = imported_modules(["ask", "What is SSO?", "--json"], env | {"HF_HUB_OFFLINE": "1"})
    assert "torch" in names and "sentence_transformers" in names, done.stderr[-2000:]
