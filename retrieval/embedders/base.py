"""`Embedder`: what retrieval asks of any embedding model, whatever runs it (in-process or a remote server)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from retrieval.chunking import estimate_tokens


class Embedder(ABC):
    """Encodes passages and queries into unit vectors (cosine similarity = dot product).

    `max_tokens` is the longest input the model reads, counted by `count_tokens` (its own tokenizer, special
    tokens included); the rest of a longer text would be dropped silently, so chunking keeps every passage
    within it. None: the model reads inputs of any length.
    """

    name: str
    dimension: int
    max_tokens: int | None = None

    @abstractmethod
    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embed passages; rows are unit vectors (float32)."""

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])[0]

    def count_tokens(self, text: str) -> int:
        """How many tokens the model reads for `text`, special tokens included (an estimate where the model's
        own tokenizer is not at hand: one per CJK character, 1.3 per other word)."""
        return estimate_tokens(text) + 2

    def describe(self) -> str:
        limit = f"reads {self.max_tokens} tokens" if self.max_tokens else "reads any length"
        return f"{self.name} ({self.dimension}-d, {limit})"
