"""The bundled MiniLM on the exported runtimes (ONNX Runtime, OpenVINO): the same vectors as torch (within cosine
0.99), one export into the cache folder it is given, the model's name unchanged; `auto` picks OpenVINO for the
bundled model on the CPU and falls back to torch when the export cannot be written; an unknown runtime or a missing
package refused in one sentence."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from retrieval.embedders import BUNDLED_MODEL_NAME, SentenceTransformerEmbedder, runtimes
from retrieval.errors import EmbedderLoadError

TEXTS = [
    "How do I upgrade Debian to the next stable release?",
    "The package manager resolves dependencies before it installs anything.",
    "如何把 Debian 升级到下一个稳定版本？",
    "软件包管理器在安装之前会先解决依赖关系。",
]


@pytest.fixture(scope="module")
def on_torch() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(runtime="torch")


@pytest.mark.parametrize(("runtime", "file"), [("onnx", "model.onnx"), ("openvino", "openvino_model.xml")])
def test_an_exported_runtime_matches_torch_and_exports_once(
    on_torch, runtime: str, file: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedder = on_torch
    cache = tmp_path / f"minilm-{runtime}"
    onnx = SentenceTransformerEmbedder(runtime=runtime, cache_dir=cache)
    assert onnx.runtime == runtime

    exported = cache / file
    assert exported.is_file()
    assert onnx.name == embedder.name == BUNDLED_MODEL_NAME  # the collection's recorded model does not change
    assert (onnx.dimension, onnx.max_tokens) == (embedder.dimension, embedder.max_tokens)
    assert onnx.count_tokens(TEXTS[2]) == embedder.count_tokens(TEXTS[2])

    reference, vectors = embedder.encode(TEXTS), onnx.encode(TEXTS)
    assert vectors.shape == reference.shape and vectors.dtype == np.float32
    cosines = np.sum(vectors * reference, axis=1)  # unit vectors
    assert cosines.min() > 0.99, cosines
    assert float(onnx.encode_query(TEXTS[0]) @ reference[0]) > 0.99  # alone: no padding in the batch

    stamp = exported.stat().st_mtime_ns

    def no_export(*args: object) -> None:
        raise AssertionError("exported again although the cache folder holds the model")

    monkeypatch.setattr(runtimes, "_export", no_export)
    again = SentenceTransformerEmbedder(runtime=runtime, cache_dir=cache)
    assert exported.stat().st_mtime_ns == stamp
    assert np.allclose(again.encode(TEXTS[:1]), vectors[:1], atol=1e-5)


def test_unknown_runtime_is_refused_before_loading() -> None:
    with pytest.raises(EmbedderLoadError, match=r"Unknown embedding runtime 'tensorrt': use one of auto, torch, onnx"):
        SentenceTransformerEmbedder(runtime="tensorrt")


def test_missing_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    with pytest.raises(EmbedderLoadError, match=r"needs openvino: pip install openvino\.$"):
        SentenceTransformerEmbedder(runtime="openvino")


def test_exported_runtimes_run_on_the_cpu() -> None:
    with pytest.raises(EmbedderLoadError, match="runs on the CPU"):
        runtimes.check_runtime("onnx", "cuda")


def test_auto_runs_the_bundled_model_on_openvino_and_other_models_on_torch(embedder) -> None:
    assert runtimes.resolve_runtime("auto", "cpu") == "openvino"
    assert runtimes.resolve_runtime("auto", "auto") == "openvino"  # this torch has no CUDA
    assert runtimes.resolve_runtime("auto", "cpu", bundled=False) == "torch"  # its export is not tested: ask for it
    assert runtimes.resolve_runtime("onnx-int8", "cpu", bundled=False) == "onnx-int8"
    assert embedder.runtime == "openvino"  # the session's embedder, loaded as ragbot loads it


def test_auto_falls_back_to_torch_when_the_export_cannot_be_written(
    on_torch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be", encoding="utf-8")
    with caplog.at_level("WARNING"):
        fallback = SentenceTransformerEmbedder(cache_dir=blocked / "minilm")
    assert fallback.runtime == "torch"
    assert "embedding on torch instead" in caplog.text
    assert np.allclose(fallback.encode(TEXTS[:1]), on_torch.encode(TEXTS[:1]), atol=1e-6)
    with pytest.raises(EmbedderLoadError, match="Cannot run the embedding model"):  # asked for by name: an error
        SentenceTransformerEmbedder(runtime="openvino", cache_dir=blocked / "minilm")


def test_openvino_embeds_from_several_threads_at_once(embedder) -> None:
    """Answers and a background sync embed at the same time: each thread gets the vectors it would get alone (a
    compiled model's one shared infer request would hand one thread's output to another)."""
    from concurrent.futures import ThreadPoolExecutor

    assert embedder.runtime == "openvino"
    batches = [[text] * size for text, size in zip(TEXTS * 4, [1, 7, 3, 12] * 4, strict=True)]
    alone = [embedder.encode(batch) for batch in batches]
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(embedder.encode, batches * 3))
    for expected, got in zip(alone * 3, together, strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-5)
