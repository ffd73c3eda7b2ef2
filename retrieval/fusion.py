"""Which fusion a hybrid query uses: one leg leads, the other refines, and the question's language decides.

Equal-weight fusion lets a weak leg drag a strong one down (with the English-only bundled embedder, Chinese
questions fuse below BM25 alone). So hybrid uses Qdrant's weighted RRF with k=2: the leading leg at weight 1, the
other at 0.2, which in Qdrant's formula (1 / (k - 1 + rank / weight)) lets the second leg reorder near-ties and lift
documents both legs rank high without outvoting the leader. The dense leg leads for questions in a language the
embedder is trusted in (EMBED_LANGUAGES); elsewhere the lexical leg leads. Chosen by `bench/retrieval_eval.py` from
a sweep of RRF k, weights and DBSF; the figures are in the README's "Retrieval" section.
"""

from __future__ import annotations

import re

from retrieval.index import Fusion
from retrieval.lexical import script_language

ALL_LANGUAGES = frozenset({"english", "chinese"})
_ALIASES = {"en": "english", "zh": "chinese"}
# Sentence-transformers models known to be trained on English only (the bundled default among them).
_ENGLISH_ONLY = re.compile(
    r"(all-minilm|all-mpnet|all-distilroberta|multi-qa-|msmarco-|paraphrase-minilm|paraphrase-mpnet|"
    r"bge-(small|base|large)-en|gte-(small|base|large)$|e5-(small|base|large)(-v2)?$|nomic-embed-text|"
    r"snowflake-arctic-embed-(xs|s|m|l)$|mxbai-embed-large)",
    re.IGNORECASE,
)

RRF_K = 2
DENSE_LEADS = (1.0, 0.2)  # (dense, lexical) weights
LEXICAL_LEADS = (0.2, 1.0)


def embedder_languages(model_name: str, setting: str = "auto") -> frozenset[str]:
    """Languages the dense leg is trusted in: EMBED_LANGUAGES ("auto", "all" or e.g. "english"), where
    "auto" recognises the common English-only models by name and trusts any other model in every language."""
    setting = setting.strip().lower()
    if setting in ("", "auto"):
        return frozenset({"english"}) if _ENGLISH_ONLY.search(model_name) else ALL_LANGUAGES
    if setting == "all":
        return ALL_LANGUAGES
    languages = frozenset(_ALIASES.get(part.strip(), part.strip()) for part in setting.split(",") if part.strip())
    unknown = languages - ALL_LANGUAGES
    if unknown:
        raise ValueError(
            f"EMBED_LANGUAGES: unknown language(s) {', '.join(sorted(unknown))}; use auto, all, or a list of "
            f"{', '.join(sorted(ALL_LANGUAGES))}"
        )
    return languages


def hybrid_fusion(query: str, dense_languages: frozenset[str]) -> Fusion:
    known = script_language(query) in dense_languages
    return Fusion("rrf", k=RRF_K, weights=DENSE_LEADS if known else LEXICAL_LEADS)
