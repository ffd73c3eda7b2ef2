"""Reranking: the Qwen3-Reranker scoring recipe and the `Reranker` protocol, with in-process, cross-encoder and
HTTP implementations. The `/v1/rerank` service (`rerank.server`) is a thin layer over the engine."""

from rerank.base import DEFAULT_INSTRUCTION, Reranker, RerankerLoadError, rank_order
from rerank.batching import DynamicBatcher, QueueFull
from rerank.cross_encoder import CrossEncoderReranker
from rerank.http import HttpReranker, RerankerUnavailableError
from rerank.qwen3 import Qwen3Reranker

__all__ = [
    "DEFAULT_INSTRUCTION",
    "CrossEncoderReranker",
    "DynamicBatcher",
    "HttpReranker",
    "QueueFull",
    "Qwen3Reranker",
    "Reranker",
    "RerankerLoadError",
    "RerankerUnavailableError",
    "rank_order",
]
