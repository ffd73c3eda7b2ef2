"""bfloat16 on the CPU: `Qwen3Reranker(dtype="bfloat16")` against float32 on the tiny model's test documents.

bfloat16 keeps 8 bits of mantissa, so scores move by up to a few 1e-3: documents whose float32 scores are
further apart than that must keep their order; closer ones (near-ties) may swap, which is why dtype="auto"
stays float32 on the CPU (see `Qwen3Reranker`'s docstring)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

from rerank import Qwen3Reranker
from rerank.qwen3 import cpu_bf16_support
from tests.rerank.test_qwen3_reranker import CHINESE_DOCS, CHINESE_QUERY, LONG, MEDIUM, MIXED_DOCS, QUERY, SHORT

BF16_FLAGS = cpu_bf16_support()
needs_bf16 = pytest.mark.skipif(
    BF16_FLAGS is None,
    reason="torch reports no bfloat16 matrix instructions on this CPU (AMX / AVX512-BF16): bfloat16 would be "
    "emulated there, slower than float32, and is not offered",
)

# Largest |bfloat16 - float32| score difference accepted, and the float32 gap beyond which two documents must
# keep their order (twice the largest error seen on these documents, ~2.5e-3).
MAX_DIFF = 0.01
NEAR_TIE = 0.005

TEST_SETS = [
    (QUERY, [SHORT, MEDIUM, LONG, *CHINESE_DOCS, *MIXED_DOCS]),
    (CHINESE_QUERY, CHINESE_DOCS),
    ("VPN 怎么装? how do I install it", MIXED_DOCS),
    (QUERY, [MEDIUM, SHORT, LONG[:900], MEDIUM[:60], "ok", LONG[:400]]),
]


def ranking(scores: Sequence[float]) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def swapped_pairs(want: Sequence[float], got: Sequence[float]) -> list[tuple[int, int, float]]:
    """Pairs ordered one way by `want` and the other way by `got`, with their gap in `want`."""
    n = len(want)
    return [(i, j, want[i] - want[j]) for i in range(n) for j in range(n) if want[i] > want[j] and got[i] < got[j]]


@pytest.fixture(scope="module")
def engines(tiny_checkpoint: Path) -> tuple[Qwen3Reranker, Qwen3Reranker]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fp32 = Qwen3Reranker(str(tiny_checkpoint), device="cpu", dtype="float32")
        bf16 = Qwen3Reranker(str(tiny_checkpoint), device="cpu", dtype="bfloat16")
    return fp32, bf16


@needs_bf16
def test_bf16_runs_in_bf16_and_scores_close_to_float32(engines: tuple[Qwen3Reranker, Qwen3Reranker]) -> None:
    fp32, bf16 = engines
    assert bf16.dtype == torch.bfloat16
    assert next(bf16._model.parameters()).dtype == torch.bfloat16
    assert bf16._w_diff.dtype == torch.float32, "the yes/no logits stay float32"
    for query, docs in TEST_SETS:
        want, got = fp32.score(query, docs), bf16.score(query, docs)
        assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in got)
        worst = max(abs(a - b) for a, b in zip(want, got, strict=True))
        assert worst <= MAX_DIFF, f"bfloat16 moved a score by {worst:.3g}"


@needs_bf16
@pytest.mark.parametrize("prefix_cache", [True, False], ids=["prefix-cache", "no-prefix-cache"])
def test_bf16_keeps_the_float32_ranking_of_the_test_documents(
    tiny_checkpoint: Path, engines: tuple[Qwen3Reranker, Qwen3Reranker], prefix_cache: bool
) -> None:
    fp32, _ = engines
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        bf16 = Qwen3Reranker(str(tiny_checkpoint), device="cpu", dtype="bfloat16", prefix_cache=prefix_cache)
    for query, docs in TEST_SETS:
        want, got = fp32.score(query, docs), bf16.score(query, docs)
        swaps = swapped_pairs(want, got)
        wide = [(i, j, gap) for i, j, gap in swaps if gap > NEAR_TIE]
        assert not wide, f"bfloat16 swapped documents whose float32 scores are > {NEAR_TIE} apart: {wide}"
        gaps = sorted(abs(a - b) for i, a in enumerate(want) for b in want[i + 1 :])
        if not gaps or gaps[0] > NEAR_TIE:
            # No near-ties in this set: the whole ranking must be the same.
            assert ranking(got) == ranking(want), f"float32 {want}\nbfloat16 {got}"


@needs_bf16
def test_bf16_agrees_with_itself_with_and_without_the_prefix_cache(
    tiny_checkpoint: Path, engines: tuple[Qwen3Reranker, Qwen3Reranker]
) -> None:
    _, bf16 = engines
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        plain = Qwen3Reranker(str(tiny_checkpoint), device="cpu", dtype="bfloat16", prefix_cache=False)
    query, docs = TEST_SETS[0]
    worst = max(abs(a - b) for a, b in zip(bf16.score(query, docs), plain.score(query, docs), strict=True))
    assert worst <= MAX_DIFF


def test_auto_dtype_on_the_cpu_stays_float32(make_reranker: Callable[..., Any]) -> None:
    # bfloat16 swaps near-tied documents on these tests (see the module docstring): not the CPU default.
    assert make_reranker(device="cpu").dtype == torch.float32


def test_cpu_bf16_support_names_the_instructions() -> None:
    flags = cpu_bf16_support()
    assert flags is None or (flags and set(flags.split(", ")) <= {"amx_bf16", "avx512_bf16"})


def test_bf16_without_bf16_instructions_warns(tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rerank.qwen3 as qwen3

    monkeypatch.setattr(qwen3, "cpu_bf16_support", lambda: None)
    with pytest.warns(RuntimeWarning, match="emulates"):
        Qwen3Reranker(str(tiny_checkpoint), device="cpu", dtype="bfloat16")


def test_the_benchmark_reports_every_row_and_the_bf16_ranking(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util
    import shutil
    import sys

    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, folder)
    bench = Path(__file__).resolve().parents[2] / "bench" / "rerank_bench.py"
    spec = importlib.util.spec_from_file_location("rerank_bench_bf16", bench)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["rerank_bench_bf16"] = module
    try:
        spec.loader.exec_module(module)
        args = ["--size", "tiny", "--docs", "3,4", "--repeats", "1", "--checkpoint", str(folder), "--bf16", "on"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "bf16 is emulated" where it is
            code = module.main(args)
    finally:
        sys.modules.pop("rerank_bench_bf16", None)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "bfloat16 matrix instructions:" in out
    for label in ("(a) tutorial", "(b) Qwen3Reranker.score, no prefix reuse", "(c) Qwen3Reranker.score, prefix reuse"):
        assert out.count(label) == 2, label  # one row per candidate count
    assert out.count("(d) sentence-transformers CrossEncoder") == 2, "sentence-transformers loads the checkpoint"
    assert out.count("(e) Qwen3Reranker.score, prefix reuse") == 2
    assert "ranking of the 3 identical to float32's:" in out and "ranking of the 4 identical to float32's:" in out
    assert "shared prefix" in out and "agreement within 0.0001: OK" in out
