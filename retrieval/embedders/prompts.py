"""What a model wants in front of a query and of a passage: instruction-tuned embedders (e5, Qwen3-Embedding,
BGE v1.5) were trained with these, and without them their retrieval is measurably worse (Qwen3-Embedding's model
card: 1-5%; e5 asks for both prefixes outright). A sentence-transformers model that declares its own prompts in its
configuration uses those; a model served by EMBED_URL, or one whose configuration names none, uses the prompts
its model card gives, found by name here."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Prompts:
    """Text put in front of a query and of a passage before embedding ("" = nothing)."""

    query: str = ""
    passage: str = ""

    @classmethod
    def from_config(cls, prompts: Mapping[str, str]) -> Prompts:
        """From a sentence-transformers configuration's `prompts`, read as its `encode_query` and
        `encode_document` read them (the passage prompt is the first of document, passage, corpus)."""
        passage = next((prompts[name] for name in ("document", "passage", "corpus") if name in prompts), "")
        return cls(query=prompts.get("query", ""), passage=passage)


NO_PROMPTS = Prompts()
_QWEN3_QUERY = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"
_BGE_EN_QUERY = "Represent this sentence for searching relevant passages: "
_BGE_ZH_QUERY = "为这个句子生成表示以用于检索相关文章："
# Model names (a hub id, a served model id or a folder) and the prompts their model cards prescribe.
_KNOWN: tuple[tuple[re.Pattern[str], Prompts], ...] = (
    (re.compile(r"qwen3-embedding", re.IGNORECASE), Prompts(query=_QWEN3_QUERY)),
    (re.compile(r"(^|/)(multilingual-)?e5-(small|base|large)(-v2)?$", re.IGNORECASE), Prompts("query: ", "passage: ")),
    (re.compile(r"multilingual-e5-large-instruct$", re.IGNORECASE), Prompts(query=_QWEN3_QUERY + " ")),
    (re.compile(r"bge-(small|base|large)-en-v1\.5$", re.IGNORECASE), Prompts(query=_BGE_EN_QUERY)),
    (re.compile(r"bge-(small|base|large)-zh-v1\.5$", re.IGNORECASE), Prompts(query=_BGE_ZH_QUERY)),
)


def known_prompts(model_name: str) -> Prompts:
    """The prompts the model card of `model_name` gives; none for a model not listed (bge-m3, MiniLM, USE)."""
    name = model_name.rstrip("/")
    return next((prompts for pattern, prompts in _KNOWN if pattern.search(name)), NO_PROMPTS)
