"""Fixtures for the Qwen3 reranker tests: a tiny random-weight checkpoint written once per session.

Nothing here downloads anything: the checkpoint and its tokenizer are made on the spot."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rerank.random_checkpoint import build_random_checkpoint

    return build_random_checkpoint(tmp_path_factory.mktemp("qwen3-tiny"), size="tiny", seed=0)


@pytest.fixture(scope="session")
def make_reranker(tiny_checkpoint: Path) -> Callable[..., Any]:
    """Builds a `Qwen3Reranker` on the tiny checkpoint (loading it takes milliseconds)."""
    from rerank import Qwen3Reranker

    def make(**kwargs: Any) -> Qwen3Reranker:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the once-per-process "CPU is slow" warning
            return Qwen3Reranker(model=str(tiny_checkpoint), **kwargs)

    return make


@pytest.fixture(scope="session")
def reranker(make_reranker: Callable[..., Any]) -> Any:
    return make_reranker()
