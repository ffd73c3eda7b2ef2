"""Runtimes for a sentence-transformers model's transformer besides torch: ONNX Runtime (fp32, or int8 by dynamic
quantisation) and OpenVINO, both on the CPU, where they hold up better than torch when the cores are shared.

sentence-transformers' own `backend="onnx"`/`"openvino"` goes through optimum, whose releases (optimum-onnx 0.1,
optimum-intel 2.2) require transformers < 4.58 / < 5.6 and fail to import with the transformers ragbot runs on. So
the export is done here with `torch.onnx.export` (and `onnxruntime.quantization.quantize_dynamic`, OpenVINO's
`convert_model`), and only the transformer's forward is swapped: sentence-transformers still tokenizes, sorts by
length, batches, pools and normalises, so `count_tokens`, `max_tokens` and the vector size do not change.

The export is written once into a cache folder and loaded from there afterwards; the model folder itself (the
bundled one lives in site-packages) is only read.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.errors import EmbedderLoadError, first_line

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "torch", "onnx", "onnx-int8", "openvino")
# What each runtime imports, and what to install for it (the export to ONNX needs `onnx` in every case).
_PACKAGES = {"onnx": ("onnxruntime", "onnx"), "onnx-int8": ("onnxruntime", "onnx"), "openvino": ("openvino", "onnx")}
# `auto` on the CPU: the same hit@5 as torch, as fast on a quiet 2-core machine and 3.6-5.1x torch's chunks/s on
# one loaded by other jobs (bench/ingest_bench.py; README, "Embedding cost and ingest speed").
_AUTO_CPU = "openvino"


def resolve_runtime(runtime: str, device: str = "auto", bundled: bool = True) -> str:
    """The runtime `auto` stands for: OpenVINO on the CPU for the bundled model (measured and tested) where it is
    installed; torch on a GPU, without OpenVINO, and for other models (their export is untested: ask for it)."""
    if runtime != "auto":
        return runtime
    if (
        not bundled
        or device not in ("auto", "cpu")
        or any(importlib.util.find_spec(p) is None for p in _PACKAGES[_AUTO_CPU])
    ):
        return "torch"
    if device == "auto":
        import torch

        if torch.cuda.is_available():
            return "torch"
    return _AUTO_CPU


_FILES = {"onnx": "model.onnx", "onnx-int8": "model_int8.onnx", "openvino": "openvino_model.xml"}
# Example inputs for tracing: two lengths, so the graph keeps the attention mask (transformers drops an all-ones
# mask as an optimisation, which would bake "no padding" into the exported graph).
_TRACE_TEXTS = ["a short one", "a somewhat longer example sentence, so that the first one is padded"]


def check_runtime(runtime: str, device: str = "auto") -> None:
    """Refuse, in one sentence, a runtime that is unknown, needs a package that is not installed, or cannot run on
    `device` (the exported runtimes run on the CPU)."""
    if runtime not in RUNTIMES:
        raise EmbedderLoadError(f"Unknown embedding runtime {runtime!r}: use one of {', '.join(RUNTIMES)}.")
    if runtime in ("torch", "auto"):
        return
    if device not in ("auto", "cpu"):
        raise EmbedderLoadError(
            f"The {runtime} runtime runs on the CPU, not {device}: use runtime torch for a GPU, or device cpu."
        )
    missing = [name for name in _PACKAGES[runtime] if importlib.util.find_spec(name) is None]
    if missing:
        raise EmbedderLoadError(
            f"The {runtime} embedding runtime needs {' and '.join(missing)}: pip install {' '.join(missing)}."
        )


def default_cache_dir(model_name: str, runtime: str) -> Path:
    """~/.cache/ragbot/embedders/<model-slug>-<runtime>/ (XDG_CACHE_HOME respected)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    slug = "".join(ch if ch.isalnum() or ch in "._" else "-" for ch in model_name).strip("-")
    return base / "ragbot" / "embedders" / f"{slug}-{runtime}"


def use_runtime(model: Any, runtime: str, model_name: str, cache_dir: str | Path | None = None) -> Path:
    """Export `model`'s transformer for `runtime` into `cache_dir` unless it is there already, and make `model`
    (a loaded SentenceTransformer) run it from then on. Returns the cache folder."""
    folder = Path(cache_dir) if cache_dir else default_cache_dir(model_name, runtime)
    target = folder / _FILES[runtime]
    transformer = model[0]
    input_names = list(transformer.tokenizer(_TRACE_TEXTS[:1]).keys())
    try:
        if not target.exists():
            started = time.perf_counter()
            folder.mkdir(parents=True, exist_ok=True)
            _export(transformer, runtime, folder, input_names)
            log.info("exported %s for %s into %s in %.1f s", model_name, runtime, folder, time.perf_counter() - started)
        forward = _OpenVinoForward(target) if runtime == "openvino" else _OnnxForward(target)
    except Exception as exc:
        raise EmbedderLoadError(
            f"Cannot run the embedding model {model_name!r} on {runtime}: {first_line(exc)}. Delete {folder} to "
            "export it again, or use runtime torch."
        ) from exc
    transformer.model = _exported_model(forward, transformer.model.config, input_names)
    transformer.model_forward_params = set(input_names)  # sentence-transformers filters the features by these
    return folder


def _export(transformer: Any, runtime: str, folder: Path, input_names: list[str]) -> None:
    """Write the runtime's file(s) into `folder`; the final file is written last (under a temporary name, then
    renamed), so its presence means a complete export."""
    if runtime == "onnx":
        _export_onnx(transformer, folder / _FILES[runtime], input_names)
        return
    fp32 = folder / f"model.fp32.{os.getpid()}.onnx"  # this process's own: two may export at once
    _export_onnx(transformer, fp32, input_names)
    if runtime == "onnx-int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        partial = folder / f"model_int8.{os.getpid()}.partial.onnx"
        # per-channel weights: per-tensor int8 left MiniLM at cosine ~0.95 to torch, per-channel at ~0.99
        quantize_dynamic(fp32, partial, weight_type=QuantType.QInt8, per_channel=True)
        partial.replace(folder / _FILES[runtime])
        fp32.unlink()
    elif runtime == "openvino":
        import openvino

        ov_model = openvino.convert_model(fp32)
        partial = folder / f"openvino_model.{os.getpid()}.partial.xml"
        openvino.save_model(ov_model, partial, compress_to_fp16=False)
        partial.with_suffix(".bin").replace(folder / "openvino_model.bin")
        partial.replace(folder / _FILES[runtime])
        fp32.unlink()


def _export_onnx(transformer: Any, path: Path, input_names: list[str]) -> None:
    import torch

    hf_model = transformer.model.eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = hf_model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(input_names, inputs, strict=True)), return_dict=True).last_hidden_state

    example = transformer.tokenizer(_TRACE_TEXTS, padding=True, return_tensors="pt")
    axes = {name: {0: "batch", 1: "sequence"} for name in [*input_names, "last_hidden_state"]}
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.onnx")
    # The tracer's warnings (the legacy exporter, Python booleans fixed at trace time: the encoder's mask and
    # causal flags, which do not vary for it) say nothing a user can act on.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(  # the TorchScript exporter: the dynamo one needs onnxscript
            LastHiddenState(),
            tuple(example[name] for name in input_names),
            str(partial),
            input_names=input_names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    partial.replace(path)


class _OnnxForward:
    def __init__(self, path: Path) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(["last_hidden_state"], inputs)[0]


class _OpenVinoForward:
    """The compiled model with an infer request per thread: a compiled model's own call reuses one request, which
    two threads (answers and a background sync, several Slack workers) must not share."""

    def __init__(self, path: Path) -> None:
        import openvino

        self.compiled = openvino.Core().compile_model(str(path), "CPU")
        self._local = threading.local()

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        return np.array(request.infer(inputs)[0])  # a copy: the request's buffer is reused by its next call


def _exported_model(forward: _OnnxForward | _OpenVinoForward, config: Any, input_names: list[str]) -> Any:
    """Stands in for the Hugging Face model inside sentence-transformers' Transformer module: same call (keyword
    tensors in, an output with `last_hidden_state`), run by the exported graph; a torch Module, as the Transformer
    module requires, but with no weights (the torch copy is freed)."""
    import torch

    class ExportedModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = config

        def forward(self, **features: Any) -> dict[str, Any]:
            inputs = {name: features[name].cpu().numpy().astype(np.int64) for name in input_names}
            return {"last_hidden_state": torch.from_numpy(forward(inputs))}

    return ExportedModel()
