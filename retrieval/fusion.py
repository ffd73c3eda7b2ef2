"""Which fusion a hybrid query uses: the question's language decides which legs lead and which refine.

Equal-weight fusion lets a weak leg drag a strong one down (with the English-only MiniLM, Chinese questions fuse
below BM25 alone). So hybrid uses Qdrant's weighted RRF (1 / (k - 1 + rank / weight) per leg): per language, the
legs that are strong there lead at weight 1 and the others refine at a small weight, which lets them reorder
near-ties and lift documents several legs rank high without outvoting the leader; a leg weighted 0 is left out.
A dense leg counts as strong in the languages its embedder is trusted in (EMBED_LANGUAGES for the primary one).
With the bundled pair: English questions are led by MiniLM, Chinese ones by BM25 with the multilingual USE beside
it. Chosen by `bench/retrieval_eval.py --sweep` (RRF k, weights, DBSF); the figures are in the README's
"Retrieval" section.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class LegWeights:
    """How the questions of one language weigh the legs, by whether each dense leg's model is trusted in that
    language: the first trusted dense leg leads, further trusted ones and the lexical leg follow at their weights,
    and where no embedder is trusted the lexical leg leads. A weight of 0 leaves that leg out of the query (and
    its model need not embed the question)."""

    k: int = RRF_K
    lead: float = 1.0  # the first dense leg trusted in the language
    second: float = 0.2  # further trusted dense legs
    untrusted: float = 0.2  # dense legs not trusted in the language
    lexical: float = 0.2  # the lexical leg beside a trusted dense leg
    lexical_alone: float = 1.0  # the lexical leg when no dense leg is trusted

    def fusion(self, trusted: Sequence[bool]) -> Fusion:
        """Weights for (dense legs in the collection's order..., lexical)."""
        weights: list[float] = []
        led = False
        for known in trusted:
            weights.append((self.second if led else self.lead) if known else self.untrusted)
            led = led or known
        weights.append(self.lexical if led else self.lexical_alone)
        return Fusion("rrf", k=self.k, weights=tuple(weights))


@dataclass(frozen=True)
class FusionPolicy:
    """Leg weights per question language (`script_language`); other languages take `LegWeights()`."""

    by_language: Mapping[str, LegWeights] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))

    def fusion(self, query: str, leg_languages: Sequence[frozenset[str]]) -> Fusion:
        language = script_language(query)
        weights = self.by_language.get(language, LegWeights())
        return weights.fusion([language in languages for languages in leg_languages])


# English: the embedder leads and the others refine (MiniLM is far ahead of BM25 and USE on English). Chinese: BM25
# over words is the strongest single leg, so it leads, the multilingual embedder (USE) follows at half weight in a
# flatter RRF (k=10), and the English-only MiniLM is left out. Tuned for the bundled pair by
# `bench/retrieval_eval.py --sweep` (README, "Retrieval"); rerun it for other models.
DEFAULT_WEIGHTS: dict[str, LegWeights] = {
    "english": LegWeights(k=2, lead=1.0, second=0.1, untrusted=0.2, lexical=0.1),
    "chinese": LegWeights(k=10, lead=0.5, second=0.5, untrusted=0.0, lexical=1.0),
}
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
