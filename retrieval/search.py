"""Dense search: embed the question, query the collection, return ranked `Candidate`s and stage timings."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from retrieval.documents import Candidate
from retrieval.embedding import Embedder
from retrieval.errors import CollectionNotFoundError
from retrieval.index import Index, check_compatible


@dataclass
class RetrievalResult:
    candidates: list[Candidate]
    timings_ms: dict[str, float] = field(default_factory=dict)


class Retriever:
    def __init__(self, index: Index, embedder: Embedder) -> None:
        self.index = index
        self.embedder = embedder
        self._checked: set[str] = set()

    def _check_collection(self, collection: str) -> None:
        if collection in self._checked:
            return
        info = self.index.collection_info(collection)
        if info is None or info.points == 0:
            raise CollectionNotFoundError(
                f"Collection {collection!r} is empty or does not exist in the {self.index.location}. "
                f"Ingest documents first: ragbot ingest DOCS_FOLDER --collection {collection}"
            )
        check_compatible(collection, info, self.embedder.dimension, self.embedder.name)
        self._checked.add(collection)

    def search(
        self, query: str, collection: str, limit: int, filters: Mapping[str, Any] | None = None
    ) -> RetrievalResult:
        self._check_collection(collection)
        started = time.perf_counter()
        vector = self.embedder.encode_query(query)
        embedded = time.perf_counter()
        hits = self.index.search(collection, vector, limit, filters)
        searched = time.perf_counter()
        candidates = [
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
            )
            for rank, hit in enumerate(hits, start=1)
        ]
        return RetrievalResult(
            candidates,
            {"embed": (embedded - started) * 1000, "search": (searched - embedded) * 1000},
        )
