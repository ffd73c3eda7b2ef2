"""`Index`: one interface over Qdrant Edge (in-process, the default) and a Qdrant server (qdrant-client).

Callers never branch on the backend: `open_index` picks it from configuration, and both backends answer the
same calls with the same results.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from retrieval.errors import CollectionMismatchError, LegacyCollectionError
from retrieval.lexical import SparseVector

if TYPE_CHECKING:
    from retrieval.embedders import Embedder

DENSE_VECTOR = "dense"  # the primary embedder's vector; a further embedder's is "dense2", "dense3"...
LEXICAL_VECTOR = "lexical"
RETRIEVAL_MODES = ("dense", "lexical", "hybrid")
RetrievalMode = Literal["dense", "lexical", "hybrid"]
# Namespace for point ids: uuid5(path, chunk index) makes re-ingestion overwrite instead of duplicating.
_POINT_NAMESPACE = uuid.UUID("6f1c3c9e-1b8e-4d0a-9a53-6a1f0b9d2c11")


def point_id(path: str, chunk_index: int) -> str:
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{path}#{chunk_index}"))


def dense_vector_name(position: int) -> str:
    """The named vector of the collection's `position`-th embedder (0: the primary one, "dense")."""
    return DENSE_VECTOR if position == 0 else f"{DENSE_VECTOR}{position + 1}"


@dataclass(frozen=True)
class DenseVector:
    """A further dense vector of a collection: its name, size and the model that makes it."""

    name: str
    dimension: int
    model: str | None


def dense_vectors(embedders: Sequence[Embedder]) -> tuple[DenseVector, ...]:
    """The further dense vectors a collection holds for `embedders` (all but the primary, first one)."""
    return tuple(
        DenseVector(dense_vector_name(position), embedder.dimension, embedder.name)
        for position, embedder in enumerate(embedders)
        if position
    )


@dataclass(frozen=True)
class CollectionInfo:
    dimension: int
    embed_model: str | None
    points: int
    lexical_model: str | None = None  # None: created before the lexical leg existed (dense only)
    extra_vectors: tuple[DenseVector, ...] = ()  # dense vectors of further embedders ("dense2", ...)

    def models(self) -> str:
        """The embedding models, primary first, as a message names them."""
        return " + ".join(
            f"{model or 'an unknown model'} ({size}-d)"
            for model, size in [(self.embed_model, self.dimension)]
            + [(v.model, v.dimension) for v in self.extra_vectors]
        )


@dataclass(frozen=True)
class IndexPoint:
    id: str
    vector: Sequence[float]
    payload: Mapping[str, Any]
    sparse: SparseVector | None = None
    extra_vectors: Mapping[str, Sequence[float]] = field(default_factory=dict)  # "dense2" -> vector, ...


@dataclass(frozen=True)
class Fusion:
    """How a hybrid query merges its legs (a dense query per embedder, and the lexical query), inside Qdrant.

    `rrf`: reciprocal rank fusion as Qdrant computes it, the sum over legs of 1 / (k - 1 + rank / weight) with
    1-based ranks; `weights` follow `SearchRequest.legs()`: (dense, dense2..., lexical). A weight below 1
    stretches that leg's ranks: its hits count less and fade faster down its list; a leg weighted 0 is left out
    of the query.
    `dbsf`: distribution-based score fusion (each leg's scores normalised by mean +- 3 standard deviations,
    summed).
    """

    method: Literal["rrf", "dbsf"] = "rrf"
    k: int = 60
    weights: tuple[float, ...] | None = None


@dataclass(frozen=True)
class SearchRequest:
    mode: RetrievalMode
    limit: int
    dense: Sequence[float] | None = None
    lexical: SparseVector | None = None
    fusion: Fusion = Fusion()
    depth: int = 0  # how deep each leg looks before fusion; 0 means max(limit, 50)
    # Payload conditions applied inside every leg (see `filter_terms`): {"tags": ["billing"], "path": "a.md"}.
    filters: Mapping[str, Any] | None = None
    explain: bool = True  # also return each hit's rank and score in each leg (see `Index.leg_places`)
    extra_dense: Mapping[str, Sequence[float]] = field(default_factory=dict)  # "dense2" -> query vector, ...

    def leg_depth(self) -> int:
        return max(self.depth or max(self.limit, 50), self.limit)

    def legs(self) -> list[tuple[str, Sequence[float] | SparseVector]]:
        """The queries this request runs, as (leg name = vector name, query): the dense legs in the
        collection's order, then the lexical one. A hybrid request leaves out the legs its fusion weighs 0."""
        if self.mode == "dense":
            return [(DENSE_VECTOR, self.dense)] if self.dense is not None else []
        if self.mode == "lexical":
            return [(LEXICAL_VECTOR, self.lexical)] if self.lexical is not None else []
        legs: list[tuple[str, Sequence[float] | SparseVector]] = []
        if self.dense is not None:
            legs.append((DENSE_VECTOR, self.dense))
        legs.extend(self.extra_dense.items())
        if self.lexical is not None:
            legs.append((LEXICAL_VECTOR, self.lexical))
        weights = self.fusion.weights
        if weights is None or self.fusion.method != "rrf":
            return legs
        if len(weights) != len(legs):
            raise ValueError(f"fusion weights {weights} do not match the legs {[name for name, _ in legs]}")
        return [leg for leg, weight in zip(legs, weights, strict=True) if weight > 0]

    def leg_weights(self) -> list[float] | None:
        """The RRF weights of the legs `legs()` keeps (None: equal)."""
        if self.fusion.weights is None:
            return None
        return [weight for weight in self.fusion.weights if weight > 0]


def filter_terms(filters: Mapping[str, Any] | None) -> list[tuple[str, Any]]:
    """`SearchRequest.filters` as (field, value) conditions, all of which a point must meet: a list or tuple value
    is a list of alternatives (any of them; on a list field such as tags, any element), a scalar is equality. An
    empty list restricts nothing, so its key is left out."""
    terms: list[tuple[str, Any]] = []
    for key, value in (filters or {}).items():
        if isinstance(value, (list, tuple, set, frozenset)):
            if value:
                terms.append((key, list(value)))
        else:
            terms.append((key, value))
    return terms


@dataclass(frozen=True)
class LegHit:
    rank: int  # 1-based within the leg
    score: float


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    payload: Mapping[str, Any]
    legs: Mapping[str, LegHit] = field(default_factory=dict)  # "dense"/"dense2"/"lexical" -> place there


def leg_lists(names: Sequence[str], leg_points: Sequence[Sequence[Any]]) -> dict[str, list[tuple[str, float]]]:
    """Each leg's results (scored points of either backend, in the order of `names`) as (id, score)."""
    return {name: [(str(p.id), float(p.score)) for p in points] for name, points in zip(names, leg_points, strict=True)}


def leg_index(leg_results: Mapping[str, Sequence[tuple[str, float]]]) -> dict[str, dict[str, LegHit]]:
    """Per leg, each point id's rank (1-based) and score there."""
    return {
        leg: {point: LegHit(rank, score) for rank, (point, score) in enumerate(results, start=1)}
        for leg, results in leg_results.items()
    }


def explain_hits(hits: list[Hit], leg_results: Mapping[str, Sequence[tuple[str, float]]]) -> list[Hit]:
    """Attach each hit's rank and score in each leg's own result list (absent: not in that leg's depth)."""
    places = leg_index(leg_results)
    return [
        Hit(hit.id, hit.score, hit.payload, {leg: found[hit.id] for leg, found in places.items() if hit.id in found})
        for hit in hits
    ]


class Index(ABC):
    """Collections of chunk points with a named dense vector and a payload."""

    location: str  # where the data lives, for messages

    @abstractmethod
    def collection_info(self, collection: str) -> CollectionInfo | None:
        """Vector size, embedding model and size of a collection, or None when it does not exist."""

    @abstractmethod
    def create_collection(
        self,
        collection: str,
        dimension: int,
        embed_model: str,
        lexical_model: str,
        extra_vectors: Sequence[DenseVector] = (),
    ) -> None:
        """A collection with a named dense vector per embedder and a named sparse vector with the IDF modifier."""

    @abstractmethod
    def drop_collection(self, collection: str) -> None: ...

    @abstractmethod
    def upsert(self, collection: str, points: Sequence[IndexPoint]) -> None: ...

    @abstractmethod
    def delete_file(self, collection: str, path: str, from_chunk: int = 0) -> None:
        """Delete the points of one source file whose chunk index is `from_chunk` or more."""

    @abstractmethod
    def scroll_payloads(
        self, collection: str, fields: Sequence[str], offset: Any = None
    ) -> tuple[list[Mapping[str, Any]], Any]:
        """One page of point payloads (only `fields`) and the offset of the next page (None at the end)."""

    def file_hashes(self, collection: str) -> dict[str, str]:
        """Every ingested file path with the hash it was ingested at: the one on its chunk 0, which ingestion
        stamps last as the file's commit mark; a path without chunk 0 (a file cut off mid-write) maps to ""."""
        hashes: dict[str, str] = {}
        offset = None
        while True:
            payloads, offset = self.scroll_payloads(collection, ["path", "file_hash", "chunk_index"], offset)
            for payload in payloads:
                if payload.get("chunk_index") == 0:
                    hashes[payload["path"]] = payload.get("file_hash", "")
                else:
                    hashes.setdefault(payload["path"], "")
            if offset is None:
                return hashes

    @abstractmethod
    def query(self, collection: str, request: SearchRequest) -> list[Hit]:
        """Best points first. `hybrid` is one Qdrant query: a prefetch per leg and a fusion query over them
        (with `explain`, the two leg queries run in the same batch to report each hit's place in each)."""

    @abstractmethod
    def leg_places(self, collection: str, request: SearchRequest) -> dict[str, list[tuple[str, float]]]:
        """Each leg's own ranking at the hybrid request's depth, as (point id, score), without payloads: what
        `explain` attaches to hits, for callers that fetch it apart from the fused query (off the hot path)."""

    def search(
        self, collection: str, vector: Sequence[float], limit: int, filters: Mapping[str, Any] | None = None
    ) -> list[Hit]:
        """Nearest points by the dense vector alone."""
        return self.query(collection, SearchRequest("dense", limit, dense=vector, filters=filters, explain=False))

    def finish_writes(self, collection: str) -> None:  # noqa: B027 - optional hook
        """Persist and optimise after a batch of writes (builds the HNSW graph where the backend needs it)."""

    @abstractmethod
    def close(self) -> None: ...

    def ensure_collection(
        self,
        collection: str,
        dimension: int,
        embed_model: str,
        lexical_model: str,
        extra_vectors: Sequence[DenseVector] = (),
    ) -> None:
        """Create the collection, or check that it was built with these embedding models, vector sizes and
        lexical model (a collection from before the lexical leg must be rebuilt)."""
        info = self.collection_info(collection)
        if info is None:
            self.create_collection(collection, dimension, embed_model, lexical_model, extra_vectors)
            return
        check_compatible(collection, info, dimension, embed_model, extra_vectors)
        if info.lexical_model != lexical_model:
            raise LegacyCollectionError(legacy_message(collection, info, lexical_model))

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_compatible(
    collection: str,
    info: CollectionInfo,
    dimension: int,
    embed_model: str,
    extra_vectors: Sequence[DenseVector] = (),
) -> None:
    """A collection answers only for the models that embedded it: mixing models returns nonsense silently."""
    primary_differs = info.dimension != dimension or (info.embed_model and info.embed_model != embed_model)
    extras_differ = [(v.name, v.dimension, v.model) for v in info.extra_vectors] != [
        (v.name, v.dimension, v.model) for v in extra_vectors
    ]
    if primary_differs or extras_differ:
        wanted = CollectionInfo(dimension, embed_model, 0, extra_vectors=tuple(extra_vectors))
        raise CollectionMismatchError(
            f"Collection {collection!r} was built with {info.models()}, but the embedding models are now "
            f"{wanted.models()}. Set EMBED_MODEL back, or rebuild it from your documents "
            f"(ragbot ingest DOCS --collection {collection} --rebuild), or re-ingest into a new collection "
            f"(ragbot ingest DOCS --collection NEW) and point the preset at it."
        )


def legacy_message(collection: str, info: CollectionInfo, lexical_model: str) -> str:
    if info.lexical_model is None:
        what = "was created before ragbot stored a lexical (BM25) vector beside the dense one"
    else:
        what = f"holds lexical terms of {info.lexical_model}, but this ragbot makes {lexical_model}"
    return (
        f"Collection {collection!r} {what}. Rebuild it from your documents: "
        f"ragbot ingest DOCS_FOLDER --collection {collection} --rebuild "
        "(until then, questions use dense retrieval only)."
    )
