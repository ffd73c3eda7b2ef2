"""The server backend: a Qdrant server or cluster through qdrant-client (`QDRANT_URL`)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from qdrant_client import QdrantClient, models

from redact import mask_secrets
from retrieval.errors import IndexUnavailableError, first_line
from retrieval.index import (
    DENSE_VECTOR,
    LEXICAL_VECTOR,
    CollectionInfo,
    DenseVector,
    Hit,
    Index,
    IndexPoint,
    SearchRequest,
    explain_hits,
    filter_terms,
    leg_lists,
)

T = TypeVar("T")
_UPSERT_BATCH = 256
# What lookups and preset filters match: a filtered HNSW search needs the field indexed to plan well.
_PAYLOAD_INDEXES = {
    "path": "keyword",
    "doc_id": "keyword",
    "source": "keyword",
    "source_name": "keyword",
    "tags": "keyword",
    "chunk_index": "integer",
}
_SCROLL_PAGE = 1000


class QdrantServerIndex(Index):
    """Also runs on `QdrantClient(":memory:")`, which speaks the same client API, for tests."""

    def __init__(self, client: QdrantClient, location: str) -> None:
        self.client = client
        self.location = location

    @classmethod
    def connect(cls, url: str, api_key: str | None = None, timeout: float = 10.0) -> QdrantServerIndex:
        if url == ":memory:":
            return cls(QdrantClient(":memory:"), "in-memory Qdrant (qdrant-client local mode)")
        # The version check is one more request that only warns; errors surface on the first real call.
        try:
            client = QdrantClient(url=url, api_key=api_key, timeout=int(max(1, timeout)), check_compatibility=False)
        except Exception as exc:  # a malformed URL: say so without echoing its credentials
            raise IndexUnavailableError(
                f"QDRANT_URL {mask_secrets(url)!r} is not a Qdrant server URL ({mask_secrets(first_line(exc))}); "
                "it looks like http://qdrant:6333 or https://host:6333."
            ) from exc
        return cls(client, f"Qdrant server at {mask_secrets(url)}")

    def _call(self, action: Callable[[], T]) -> T:
        """Turn transport failures into one clear error naming the server."""
        try:
            return action()
        except (ValueError, KeyError):
            raise
        except Exception as exc:
            raise IndexUnavailableError(
                f"Cannot reach the {self.location}: {mask_secrets(first_line(exc))}. Is it running (docker compose "
                "up -d qdrant)? Check QDRANT_URL and QDRANT_API_KEY, or unset QDRANT_URL to use the embedded store."
            ) from exc

    def collection_info(self, collection: str) -> CollectionInfo | None:
        if not self._call(lambda: self.client.collection_exists(collection)):
            return None
        info = self._call(lambda: self.client.get_collection(collection))
        vectors = info.config.params.vectors
        params = vectors.get(DENSE_VECTOR) if isinstance(vectors, dict) else vectors
        if params is None:
            raise IndexUnavailableError(
                f"Collection {collection!r} on the {self.location} has no '{DENSE_VECTOR}' vector: it was not "
                "created by ragbot. Use another collection name."
            )
        metadata = info.config.metadata or {}
        sparse = info.config.params.sparse_vectors or {}
        points = self._call(lambda: self.client.count(collection, exact=True).count)
        extra_models = metadata.get("extra_models") or {}
        return CollectionInfo(
            dimension=params.size,
            embed_model=metadata.get("embed_model"),
            points=points,
            lexical_model=metadata.get("lexical_model") if LEXICAL_VECTOR in sparse else None,
            extra_vectors=tuple(
                DenseVector(name, vectors[name].size, extra_models.get(name))
                for name in sorted(vectors if isinstance(vectors, dict) else {}, key=_vector_order)
                if name != DENSE_VECTOR
            ),
        )

    def create_collection(
        self,
        collection: str,
        dimension: int,
        embed_model: str,
        lexical_model: str,
        extra_vectors: Sequence[DenseVector] = (),
    ) -> None:
        sizes = {DENSE_VECTOR: dimension} | {v.name: v.dimension for v in extra_vectors}
        metadata = {"embed_model": embed_model, "lexical_model": lexical_model}
        if extra_vectors:
            metadata["extra_models"] = {v.name: v.model for v in extra_vectors}  # type: ignore[assignment]
        self._call(
            lambda: self.client.create_collection(
                collection,
                vectors_config={
                    name: models.VectorParams(size=size, distance=models.Distance.COSINE)
                    for name, size in sizes.items()
                },
                sparse_vectors_config={LEXICAL_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)},
                metadata=metadata,
            )
        )
        with warnings.catch_warnings():  # local mode warns that payload indexes do nothing there
            warnings.simplefilter("ignore", UserWarning)
            for name, schema in _PAYLOAD_INDEXES.items():
                self._call(lambda n=name, s=schema: self.client.create_payload_index(collection, n, s))

    def drop_collection(self, collection: str) -> None:
        self._call(lambda: self.client.delete_collection(collection))

    def upsert(self, collection: str, points: Sequence[IndexPoint]) -> None:
        for start in range(0, len(points), _UPSERT_BATCH):
            batch = [
                models.PointStruct(id=p.id, vector=_vectors(p), payload=dict(p.payload))
                for p in points[start : start + _UPSERT_BATCH]
            ]
            self._call(lambda b=batch: self.client.upsert(collection, b, wait=True))

    def delete_file(self, collection: str, path: str, from_chunk: int = 0) -> None:
        conditions: list[models.Condition] = [models.FieldCondition(key="path", match=models.MatchValue(value=path))]
        if from_chunk:
            conditions.append(models.FieldCondition(key="chunk_index", range=models.Range(gte=from_chunk)))
        selector = models.FilterSelector(filter=models.Filter(must=conditions))
        self._call(lambda: self.client.delete(collection, selector, wait=True))

    def scroll_payloads(
        self, collection: str, fields: Sequence[str], offset: Any = None
    ) -> tuple[list[Mapping[str, Any]], Any]:
        records, next_offset = self._call(
            lambda: self.client.scroll(collection, limit=_SCROLL_PAGE, offset=offset, with_payload=list(fields))
        )
        return [record.payload or {} for record in records], next_offset

    def query(self, collection: str, request: SearchRequest) -> list[Hit]:
        where = _filter(request)
        legs = _leg_queries(request)
        if request.mode != "hybrid":
            ((query, using),) = legs.values()
            single = models.QueryRequest(query=query, using=using, filter=where, limit=request.limit, with_payload=True)
            return [_hit(p) for p in self._batch(collection, [single])[0]]
        depth = request.leg_depth()
        fused = models.QueryRequest(
            prefetch=[
                models.Prefetch(query=query, using=using, filter=where, limit=depth) for query, using in legs.values()
            ],
            query=_fusion(request),
            limit=request.limit,
            with_payload=True,
        )
        if not request.explain:
            return [_hit(p) for p in self._batch(collection, [fused])[0]]
        # One round trip: the fusion query and each leg's own list (for each hit's rank per leg).
        fused_points, *leg_points = self._batch(collection, [fused, *_leg_requests(request, legs, where)])
        return explain_hits([_hit(p) for p in fused_points], leg_lists(list(legs), leg_points))

    def leg_places(self, collection: str, request: SearchRequest) -> dict[str, list[tuple[str, float]]]:
        legs = _leg_queries(request)
        requests = _leg_requests(request, legs, _filter(request))
        return leg_lists(list(legs), self._batch(collection, requests))

    def _batch(self, collection: str, requests: list[models.QueryRequest]) -> list[list[models.ScoredPoint]]:
        responses = self._call(lambda: self.client.query_batch_points(collection, requests))
        return [response.points for response in responses]

    def close(self) -> None:
        self.client.close()


def _vector_order(name: str) -> tuple[int, str]:
    """ "dense2" before "dense10": the order the embedders were configured in."""
    digits = name[len(DENSE_VECTOR) :]
    return (int(digits) if digits.isdigit() else 0, name)


def _vectors(point: IndexPoint) -> dict[str, Any]:
    vectors: dict[str, Any] = {DENSE_VECTOR: list(map(float, point.vector))}
    vectors.update({name: list(map(float, vector)) for name, vector in point.extra_vectors.items()})
    if point.sparse is not None:
        vectors[LEXICAL_VECTOR] = models.SparseVector(
            indices=list(point.sparse.indices), values=list(point.sparse.values)
        )
    return vectors


def _filter(request: SearchRequest) -> models.Filter | None:
    """The request's filters as one Qdrant filter, given to every leg (a leg filtered only after fusion would
    have spent its depth on points the filter drops)."""
    conditions: list[models.Condition] = [
        models.FieldCondition(
            key=key,
            match=models.MatchAny(any=value) if isinstance(value, list) else models.MatchValue(value=value),
        )
        for key, value in filter_terms(request.filters)
    ]
    return models.Filter(must=conditions) if conditions else None


def _leg_requests(
    request: SearchRequest, legs: dict[str, tuple[Any, str]], where: models.Filter | None
) -> list[models.QueryRequest]:
    depth = request.leg_depth()
    return [
        models.QueryRequest(query=query, using=using, filter=where, limit=depth, with_payload=False)
        for query, using in legs.values()
    ]


def _leg_queries(request: SearchRequest) -> dict[str, tuple[Any, str]]:
    """Leg name -> (query, vector name), in `SearchRequest.legs()` order."""
    queries: dict[str, tuple[Any, str]] = {}
    for name, vector in request.legs():
        if name == LEXICAL_VECTOR:
            terms = models.SparseVector(indices=list(vector.indices), values=list(vector.values))  # type: ignore[union-attr]
            queries[name] = (terms, LEXICAL_VECTOR)
        else:
            queries[name] = (list(map(float, vector)), name)  # type: ignore[arg-type]
    return queries


def _fusion(request: SearchRequest) -> models.Query:
    if request.fusion.method == "dbsf":
        return models.FusionQuery(fusion=models.Fusion.DBSF)
    return models.RrfQuery(rrf=models.Rrf(k=request.fusion.k, weights=request.leg_weights()))


def _hit(point: models.ScoredPoint) -> Hit:
    return Hit(str(point.id), float(point.score), point.payload or {})
