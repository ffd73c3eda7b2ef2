"""Search: embed and tokenise the question, query the collection (dense, lexical or both fused), return ranked
`Candidate`s with each one's place in each leg, and stage timings."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from retrieval.documents import Candidate
from retrieval.embedders import Embedder
from retrieval.errors import CollectionNotFoundError, RetrievalError
from retrieval.fusion import DEFAULT_POLICY, FusionPolicy, embedder_languages
from retrieval.index import (
    RETRIEVAL_MODES,
    CollectionInfo,
    Fusion,
    Index,
    LegHit,
    SearchRequest,
    check_compatible,
    dense_vector_name,
    dense_vectors,
    leg_index,
    legacy_message,
)
from retrieval.lexical import LexicalEncoder

log = logging.getLogger(__name__)
_RECHECK_LEGACY_S = 60.0


@dataclass
class RetrievalResult:
    candidates: list[Candidate]
    timings_ms: dict[str, float] = field(default_factory=dict)
    mode: str = "dense"  # the mode that ran (a legacy collection runs dense whatever was asked)
    note: str | None = None  # why the mode differs from the one asked for
    # Set by a hybrid search with explain=False: fetches each leg's ranking and fills the candidates' dense_*
    # and lexical_* fields. The pipeline runs it while the reranker works, off the answer's critical path.
    pending_explanation: Callable[[], None] | None = None

    def explain(self) -> None:
        """Fill the candidates' per-leg ranks and scores if the search left them for later (idempotent)."""
        if self.pending_explanation is not None:
            self.pending_explanation()
            self.pending_explanation = None


class Retriever:
    """Searches with one dense leg per embedder (the first is the primary one: its vector is `dense`, its
    languages are `dense_languages`) and the lexical leg, fused by `policy` from the question's language."""

    def __init__(
        self,
        index: Index,
        embedder: Embedder | Sequence[Embedder],
        lexical: LexicalEncoder | None = None,
        dense_languages: frozenset[str] | None = None,
        policy: FusionPolicy = DEFAULT_POLICY,
    ) -> None:
        self.index = index
        self.embedders = [embedder] if isinstance(embedder, Embedder) else list(embedder)
        self.embedder = self.embedders[0]
        self.lexical = lexical or LexicalEncoder()
        self.dense_languages = dense_languages or embedder_languages(self.embedder.name)
        self.leg_languages = [self.dense_languages] + [embedder_languages(e.name) for e in self.embedders[1:]]
        self.extra_vectors = dense_vectors(self.embedders)
        self.policy = policy
        self._collections: dict[str, tuple[CollectionInfo, float]] = {}  # info, when to look again

    def _collection(self, collection: str) -> CollectionInfo:
        """The collection's info, checked once; a collection without the current lexical vector is looked at
        again after a minute, so a running bot notices `ingest --rebuild` done by another process."""
        cached = self._collections.get(collection)
        if cached is not None and (cached[0].lexical_model == self.lexical.name or time.monotonic() < cached[1]):
            return cached[0]
        info = self.index.collection_info(collection)
        if info is None or info.points == 0:
            raise CollectionNotFoundError(
                f"Collection {collection!r} is empty or does not exist in the {self.index.location}. "
                f"Ingest documents first: ragbot ingest DOCS_FOLDER --collection {collection}"
            )
        check_compatible(collection, info, self.embedder.dimension, self.embedder.name, self.extra_vectors)
        if info.lexical_model != self.lexical.name and cached is None:
            log.warning(legacy_message(collection, info, self.lexical.name))
        self._collections[collection] = (info, time.monotonic() + _RECHECK_LEGACY_S)
        return info

    def search(
        self,
        query: str,
        collection: str,
        limit: int,
        filters: Mapping[str, Any] | None = None,
        mode: str = "hybrid",
        fusion: Fusion | None = None,
        explain: bool = True,
    ) -> RetrievalResult:
        """`mode`: dense, lexical or hybrid; `filters`: payload conditions every leg applies (see
        `retrieval.index.filter_terms`: a list means any of its values); `fusion` overrides the language-aware
        default (benchmarks).
        `explain=False` runs only the fused query and leaves the per-leg ranks to `RetrievalResult.explain()`."""
        if mode not in RETRIEVAL_MODES:
            raise RetrievalError(f"Unknown retrieval mode {mode!r}: use one of {', '.join(RETRIEVAL_MODES)}.")
        info = self._collection(collection)
        note = None
        if mode != "dense" and info.lexical_model != self.lexical.name:
            mode, note = "dense", legacy_message(collection, info, self.lexical.name)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        lexical = self.lexical.encode_query(query) if mode != "dense" else None
        if lexical is not None and len(lexical) == 0 and mode == "hybrid":
            mode, lexical = "dense", None  # only stop words: the lexical leg has nothing to match
        tokenised = time.perf_counter()
        if mode != "dense":
            timings["tokenize"] = (tokenised - started) * 1000
        fusion = fusion or self.policy.fusion(query, self.leg_languages)
        weights = self._dense_weights(mode, fusion)
        vectors = {
            dense_vector_name(position): embedder.encode_query(query)
            for position, (embedder, weight) in enumerate(zip(self.embedders, weights, strict=True))
            if weight > 0
        }
        embedded = time.perf_counter()
        timings["embed"] = (embedded - tokenised) * 1000
        if mode == "hybrid" and fusion.weights is not None:
            kept = [w for w in weights if w > 0] + [fusion.weights[-1]]
            fusion = Fusion(fusion.method, fusion.k, tuple(kept))
        request = SearchRequest(
            mode,  # type: ignore[arg-type]
            limit,
            dense=vectors.pop(dense_vector_name(0), None),
            extra_dense=vectors,
            lexical=lexical,
            fusion=fusion,
            filters=filters,
            explain=explain,
        )
        hits = [] if lexical is not None and len(lexical) == 0 else self.index.query(collection, request)
        timings["search"] = (time.perf_counter() - embedded) * 1000
        candidates = []
        for rank, hit in enumerate(hits, start=1):
            candidate = Candidate(
                point_id=hit.id,
                doc_id=str(hit.payload.get("doc_id", "")),
                title=str(hit.payload.get("title", "")),
                source=str(hit.payload.get("source", "")),
                section=str(hit.payload.get("section", "")),
                text=str(hit.payload.get("text", "")),
                retrieval_rank=rank,
                retrieval_score=hit.score,
                path=str(hit.payload.get("path", "")),
                updated=str(hit.payload.get("updated") or ""),
            )
            # A single-leg search is its own leg's ranking.
            _set_legs(candidate, {mode: LegHit(rank, hit.score)} if mode != "hybrid" else hit.legs)
            candidates.append(candidate)
        result = RetrievalResult(candidates, timings, mode=mode, note=note)
        if mode == "hybrid" and not explain and candidates:
            result.pending_explanation = lambda: self._explain(collection, request, candidates)
        return result

    def _dense_weights(self, mode: str, fusion: Fusion) -> list[float]:
        """Per embedder, its leg's weight in this search (0: not searched, so not embedded): dense mode searches
        the primary embedder's vector; hybrid, every dense leg its fusion weighs above 0."""
        if mode == "lexical":
            return [0.0] * len(self.embedders)
        if mode == "dense":
            return [1.0] + [0.0] * (len(self.embedders) - 1)
        if fusion.method != "rrf" or fusion.weights is None:
            return [1.0] * len(self.embedders)
        if len(fusion.weights) != len(self.embedders) + 1:
            raise RetrievalError(
                f"Fusion weights {fusion.weights} do not match {len(self.embedders)} dense leg(s) and the lexical one."
            )
        return list(fusion.weights[:-1])

    def _explain(self, collection: str, request: SearchRequest, candidates: list[Candidate]) -> None:
        places = leg_index(self.index.leg_places(collection, request))
        for candidate in candidates:
            _set_legs(
                candidate,
                {leg: found[candidate.point_id] for leg, found in places.items() if candidate.point_id in found},
            )


def _set_legs(candidate: Candidate, legs: Mapping[str, LegHit]) -> None:
    dense, lexical = legs.get("dense"), legs.get("lexical")
    candidate.dense_rank, candidate.dense_score = (dense.rank, dense.score) if dense else (None, None)
    candidate.lexical_rank, candidate.lexical_score = (lexical.rank, lexical.score) if lexical else (None, None)
