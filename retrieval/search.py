"""Search: embed and tokenise the question, query the collection (dense, lexical or both fused), return ranked
`Candidate`s with each one's place in each channel, and stage timings."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from retrieval.documents import Candidate
from retrieval.embedding import Embedder
from retrieval.errors import CollectionNotFoundError, RetrievalError
from retrieval.fusion import embedder_languages, hybrid_fusion
from retrieval.index import (
    RETRIEVAL_MODES,
    ChannelHit,
    CollectionInfo,
    Fusion,
    Index,
    SearchRequest,
    check_compatible,
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


class Retriever:
    def __init__(
        self,
        index: Index,
        embedder: Embedder,
        lexical: LexicalEncoder | None = None,
        dense_languages: frozenset[str] | None = None,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.lexical = lexical or LexicalEncoder()
        self.dense_languages = dense_languages or embedder_languages(embedder.name)
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
        check_compatible(collection, info, self.embedder.dimension, self.embedder.name)
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
    ) -> RetrievalResult:
        """`mode`: dense, lexical or hybrid; `fusion` overrides the language-aware default (benchmarks)."""
        if mode not in RETRIEVAL_MODES:
            raise RetrievalError(f"Unknown retrieval mode {mode!r}: use one of {', '.join(RETRIEVAL_MODES)}.")
        info = self._collection(collection)
        note = None
        if mode != "dense" and info.lexical_model != self.lexical.name:
            mode, note = "dense", legacy_message(collection, info, self.lexical.name)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        dense = self.embedder.encode_query(query) if mode != "lexical" else None
        embedded = time.perf_counter()
        timings["embed"] = (embedded - started) * 1000
        lexical = self.lexical.encode_query(query) if mode != "dense" else None
        if lexical is not None and len(lexical) == 0 and mode == "hybrid":
            mode, lexical = "dense", None  # only stop words: the lexical channel has nothing to match
        tokenised = time.perf_counter()
        if mode != "dense":
            timings["tokenize"] = (tokenised - embedded) * 1000
        if lexical is not None and len(lexical) == 0:
            hits = []
        else:
            request = SearchRequest(
                mode,  # type: ignore[arg-type]
                limit,
                dense=dense,
                lexical=lexical,
                fusion=fusion or hybrid_fusion(query, self.dense_languages),
                filters=filters,
            )
            hits = self.index.query(collection, request)
        timings["search"] = (time.perf_counter() - tokenised) * 1000
        candidates = []
        for rank, hit in enumerate(hits, start=1):
            in_dense = hit.channels.get("dense")
            in_lexical = hit.channels.get("lexical")
            if mode == "dense":
                in_dense = in_dense or ChannelHit(rank, hit.score)
            elif mode == "lexical":
                in_lexical = in_lexical or ChannelHit(rank, hit.score)
            candidates.append(
                Candidate(
                    point_id=hit.id,
                    doc_id=str(hit.payload.get("doc_id", "")),
                    title=str(hit.payload.get("title", "")),
                    source=str(hit.payload.get("source", "")),
                    section=str(hit.payload.get("section", "")),
                    text=str(hit.payload.get("text", "")),
                    retrieval_rank=rank,
                    retrieval_score=hit.score,
                    path=str(hit.payload.get("path", "")),
                    dense_rank=in_dense.rank if in_dense else None,
                    dense_score=in_dense.score if in_dense else None,
                    lexical_rank=in_lexical.rank if in_lexical else None,
                    lexical_score=in_lexical.score if in_lexical else None,
                )
            )
        return RetrievalResult(candidates, timings, mode=mode, note=note)
