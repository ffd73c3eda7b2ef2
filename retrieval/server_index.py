"""The server backend: a Qdrant server or cluster through qdrant-client (`QDRANT_URL`)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from qdrant_client import QdrantClient, models

from retrieval.errors import IndexUnavailableError
from retrieval.index import DENSE_VECTOR, CollectionInfo, Hit, Index, IndexPoint

T = TypeVar("T")
_UPSERT_BATCH = 256
_PAYLOAD_INDEXES = {"path": "keyword", "doc_id": "keyword", "source": "keyword", "chunk_index": "integer"}
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
        client = QdrantClient(url=url, api_key=api_key, timeout=int(max(1, timeout)), check_compatibility=False)
        return cls(client, f"Qdrant server at {url}")

    def _call(self, action: Callable[[], T]) -> T:
        """Turn transport failures into one clear error naming the server."""
        try:
            return action()
        except (ValueError, KeyError):
            raise
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise IndexUnavailableError(
                f"Cannot reach the {self.location}: {reason[:300]}. Is it running (docker compose up -d qdrant)? "
                "Check QDRANT_URL and QDRANT_API_KEY, or unset QDRANT_URL to use the embedded store."
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
        points = self._call(lambda: self.client.count(collection, exact=True).count)
        return CollectionInfo(dimension=params.size, embed_model=metadata.get("embed_model"), points=points)

    def create_collection(self, collection: str, dimension: int, embed_model: str) -> None:
        self._call(
            lambda: self.client.create_collection(
                collection,
                vectors_config={DENSE_VECTOR: models.VectorParams(size=dimension, distance=models.Distance.COSINE)},
                metadata={"embed_model": embed_model},
            )
        )
        with warnings.catch_warnings():  # local mode warns that payload indexes do nothing there
            warnings.simplefilter("ignore", UserWarning)
            for name, schema in _PAYLOAD_INDEXES.items():
                self._call(lambda n=name, s=schema: self.client.create_payload_index(collection, n, s))

    def upsert(self, collection: str, points: Sequence[IndexPoint]) -> None:
        for start in range(0, len(points), _UPSERT_BATCH):
            batch = [
                models.PointStruct(id=p.id, vector={DENSE_VECTOR: list(map(float, p.vector))}, payload=dict(p.payload))
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

    def search(
        self, collection: str, vector: Sequence[float], limit: int, filters: Mapping[str, Any] | None = None
    ) -> list[Hit]:
        conditions: list[models.Condition] = [
            models.FieldCondition(key=key, match=models.MatchValue(value=value))
            for key, value in (filters or {}).items()
        ]
        response = self._call(
            lambda: self.client.query_points(
                collection,
                query=list(map(float, vector)),
                using=DENSE_VECTOR,
                query_filter=models.Filter(must=conditions) if conditions else None,
                limit=limit,
                with_payload=True,
            )
        )
        return [Hit(str(p.id), float(p.score), p.payload or {}) for p in response.points]

    def close(self) -> None:
        self.client.close()
