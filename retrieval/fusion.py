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
from collections.abc import Sequence
from dataclasses import dataclass

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
DENSE_LEADS = (1.0, 0.2)  # (dense, lexical) weights with one embedder
LEXICAL_LEADS = (0.2, 1.0)


@dataclass(frozen=True)
class FusionPolicy:
    """The weights of a hybrid query's legs, by whether each dense leg's model is trusted in the question's
    language: the first trusted dense leg leads, further trusted ones and the lexical leg refine, and where no
    embedder is trusted the lexical leg leads. A weight of 0 leaves that leg out of the query (and its model
    need not embed the question)."""

    k: int = RRF_K
    lead: float = 1.0  # the first dense leg trusted in the question's language
    second: float = 0.2  # further trusted dense legs
    untrusted: float = 0.2  # dense legs not trusted in that language
    lexical_refine: float = 0.2  # the lexical leg beside a leading dense leg
    lexical_lead: float = 1.0  # the lexical leg when no dense leg is trusted

    def fusion(self, query: str, leg_languages: Sequence[frozenset[str]]) -> Fusion:
        """Weights for (dense legs in the collection's order..., lexical)."""
        language = script_language(query)
        weights: list[float] = []
        led = False
        for languages in leg_languages:
            if language in languages:
                weights.append(self.second if led else self.lead)
                led = True
            else:
                weights.append(self.untrusted)
        weights.append(self.lexical_refine if led else self.lexical_lead)
        return Fusion("rrf", k=self.k, weights=tuple(weights))


DEFAULT_POLICY = FusionPolicy()


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


def hybrid_fusion(
    query: str, leg_languages: frozenset[str] | Sequence[frozenset[str]], policy: FusionPolicy = DEFAULT_POLICY
) -> Fusion:
    """The default fusion for `query`: one language set per dense leg (or one set: a single embedder)."""
    legs = [leg_languages] if isinstance(leg_languages, frozenset) else list(leg_languages)
    return policy.fusion(query, legs)
