"""`Index`: one interface over Qdrant Edge (in-process, the default) and a Qdrant server (qdrant-client).

Like qdrant-client's one API over local mode and server, callers never branch on the backend: `open_index`
picks it from configuration.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from retrieval.errors import CollectionMismatchError

DENSE_VECTOR = "dense"
# Namespace for point ids: uuid5(path, chunk index) makes re-ingestion overwrite instead of duplicating.
_POINT_NAMESPACE = uuid.UUID("6f1c3c9e-1b8e-4d0a-9a53-6a1f0b9d2c11")


def point_id(path: str, chunk_index: int) -> str:
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{path}#{chunk_index}"))


@dataclass(frozen=True)
class CollectionInfo:
    dimension: int
    embed_model: str | None
    points: int


@dataclass(frozen=True)
class IndexPoint:
    id: str
    vector: Sequence[float]
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    payload: Mapping[str, Any]


class Index(ABC):
    """Collections of chunk points with a named dense vector and a payload."""

    location: str  # where the data lives, for messages

    @abstractmethod
    def collection_info(self, collection: str) -> CollectionInfo | None:
        """Vector size, embedding model and size of a collection, or None when it does not exist."""

    @abstractmethod
    def create_collection(self, collection: str, dimension: int, embed_model: str) -> None: ...

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
        """Every ingested file path with the hash it was ingested at."""
        hashes: dict[str, str] = {}
        offset = None
        while True:
            payloads, offset = self.scroll_payloads(collection, ["path", "file_hash"], offset)
            for payload in payloads:
                hashes[payload["path"]] = payload.get("file_hash", "")
            if offset is None:
                return hashes

    @abstractmethod
    def search(
        self, collection: str, vector: Sequence[float], limit: int, filters: Mapping[str, Any] | None = None
    ) -> list[Hit]:
        """Nearest points by the dense vector, best first, optionally with payload `field == value` filters."""

    def finish_writes(self, collection: str) -> None:  # noqa: B027 - optional hook
        """Persist and optimise after a batch of writes (builds the HNSW graph where the backend needs it)."""

    @abstractmethod
    def close(self) -> None: ...

    def ensure_collection(self, collection: str, dimension: int, embed_model: str) -> None:
        """Create the collection, or check that it was built with this embedding model and vector size."""
        info = self.collection_info(collection)
        if info is None:
            self.create_collection(collection, dimension, embed_model)
            return
        check_compatible(collection, info, dimension, embed_model)

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_compatible(collection: str, info: CollectionInfo, dimension: int, embed_model: str) -> None:
    """A collection answers only for the model that embedded it: mixing models returns nonsense silently."""
    if info.dimension != dimension or (info.embed_model and info.embed_model != embed_model):
        built_with = f"{info.embed_model or 'an unknown model'} ({info.dimension}-d vectors)"
        raise CollectionMismatchError(
            f"Collection {collection!r} was built with {built_with}, but the embedding model is now "
            f"{embed_model} ({dimension}-d). Set EMBED_MODEL back, or re-ingest into a new collection "
            f"(ragbot ingest DOCS --collection NEW) and point the preset at it."
        )
