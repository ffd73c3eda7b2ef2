"""Reranking: the Qwen3-Reranker scoring recipe and the `Reranker` protocol."""

from rerank.base import DEFAULT_INSTRUCTION, Reranker, RerankerLoadError
from rerank.qwen3 import Qwen3Reranker

__all__ = ["DEFAULT_INSTRUCTION", "Qwen3Reranker", "Reranker", "RerankerLoadError"]
