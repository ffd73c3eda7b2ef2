"""The benchmark script still runs (tiny size, a few documents) and its two paths agree."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "rerank_bench.py"


def test_bench_runs_on_the_tiny_checkpoint(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, folder)
    spec = importlib.util.spec_from_file_location("rerank_bench", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["rerank_bench"] = module
    try:
        spec.loader.exec_module(module)
        code = module.main(["--size", "tiny", "--docs", "3", "--repeats", "1", "--checkpoint", str(folder)])
    finally:
        sys.modules.pop("rerank_bench", None)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "checkpoint: reusing" in out
    assert "(a) tutorial" in out and "(b) Qwen3Reranker.score" in out
    assert "agreement within 0.0001: OK" in out
