"""Which fusion a hybrid query uses: the weights depend on whether the embedder knows the question's language.

The bundled all-MiniLM-L6-v2 is English-only: on Chinese questions its ranking is close to noise and equal-weight
fusion lets it push the lexical channel's good answers out of the top 5. So the dense channel's RRF weight drops
for questions in a language the embedder does not cover. The weights come from `bench/retrieval_eval.py`
(README, "Retrieval"); a multilingual EMBED_MODEL keeps both channels at full weight in every language.
"""

from __future__ import annotations

import re

from retrieval.index import Fusion
from retrieval.lexical import script_language

ALL_LANGUAGES = frozenset({"english", "chinese"})
# Sentence-transformers models known to be trained on English only (the bundled default among them).
_ENGLISH_ONLY = re.compile(
    r"(all-minilm|all-mpnet|all-distilroberta|multi-qa-|msmarco-|paraphrase-minilm|paraphrase-mpnet|"
    r"bge-(small|base|large)-en|gte-(small|base|large)$|e5-(small|base|large)(-v2)?$|nomic-embed-text|"
    r"snowflake-arctic-embed-(xs|s|m|l)$|mxbai-embed-large)",
    re.IGNORECASE,
)

RRF_K = 60
WEIGHTS_KNOWN_LANGUAGE = (1.0, 1.0)  # (dense, lexical)
WEIGHTS_UNKNOWN_LANGUAGE = (0.2, 1.0)


def embedder_languages(model_name: str, setting: str = "auto") -> frozenset[str]:
    """Languages the dense channel is trusted in: EMBED_LANGUAGES ("auto", "all" or e.g. "english"), where
    "auto" recognises the common English-only models by name and trusts any other model in every language."""
    setting = setting.strip().lower()
    if setting in ("", "auto"):
        return frozenset({"english"}) if _ENGLISH_ONLY.search(model_name) else ALL_LANGUAGES
    if setting == "all":
        return ALL_LANGUAGES
    return frozenset(part.strip() for part in setting.split(",") if part.strip())


def hybrid_fusion(query: str, dense_languages: frozenset[str]) -> Fusion:
    known = script_language(query) in dense_languages
    return Fusion("rrf", k=RRF_K, weights=WEIGHTS_KNOWN_LANGUAGE if known else WEIGHTS_UNKNOWN_LANGUAGE)
