"""The embedded backend: Qdrant Edge, Qdrant's own engine in-process (one shard folder per collection)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from retrieval.errors import CollectionNameError, IndexLockedError, IndexUnavailableError
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
from retrieval.names import check_collection_name

_KEYWORD_FIELDS = ("path", "doc_id", "source", "source_name", "tags")  # what lookups and preset filters match
_SCROLL_PAGE = 1000


class EdgeIndex(Index):
    """Collections live in `<root>/<collection>/`: `shard/` (Qdrant Edge), `collection.json` (vector size and
    embedding model) and `owner.json` (which process holds the shard, for a helpful message to the next one)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.location = f"embedded Qdrant Edge store at {self.root}"
        self._shards: dict[str, qe.EdgeShard] = {}
        self._opening = threading.Lock()

    # -- collections -------------------------------------------------------------------------------
    def _dir(self, collection: str) -> Path:
        """The collection's folder, named as the collection: the one name rule keeps it inside `root`."""
        try:
            check_collection_name(collection)
        except ValueError as exc:
            raise CollectionNameError(f"collection {collection!r}: {exc}") from None
        return self.root / collection

    def collection_info(self, collection: str) -> CollectionInfo | None:
        meta_file = self._dir(collection) / "collection.json"
        if not meta_file.exists():
            return None
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        points = self._shard(collection).count(qe.CountRequest(exact=True))
        return CollectionInfo(
            dimension=int(meta["dimension"]),
            embed_model=meta.get("embed_model"),
            points=points,
            lexical_model=meta.get("lexical_model"),
            extra_vectors=tuple(
                DenseVector(v["name"], int(v["dimension"]), v.get("model")) for v in meta.get("extra_vectors", [])
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
        folder = self._dir(collection)
        folder.mkdir(parents=True, exist_ok=True)
        sizes = {DENSE_VECTOR: dimension} | {v.name: v.dimension for v in extra_vectors}
        config = qe.EdgeConfig(
            vectors={name: qe.EdgeVectorParams(size=size, distance=qe.Distance.Cosine) for name, size in sizes.items()},
            sparse_vectors={LEXICAL_VECTOR: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        )
        shard = self._open(collection, lambda path: qe.EdgeShard.create(path, config))
        for field in _KEYWORD_FIELDS:
            shard.update(qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Keyword))
        shard.update(qe.UpdateOperation.create_field_index("chunk_index", qe.PayloadSchemaType.Integer))
        meta = {
            "dimension": dimension,
            "embed_model": embed_model,
            "vector": DENSE_VECTOR,
            "lexical_vector": LEXICAL_VECTOR,
            "lexical_model": lexical_model,
            "extra_vectors": [{"name": v.name, "dimension": v.dimension, "model": v.model} for v in extra_vectors],
        }
        (folder / "collection.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")

    def drop_collection(self, collection: str) -> None:
        folder = self._dir(collection)
        shard = self._shards.pop(collection, None)
        if shard is not None:
            shard.close()
        if folder.exists():
            shutil.rmtree(folder)

    # -- shards ------------------------------------------------------------------------------------
    def _shard(self, collection: str) -> qe.EdgeShard:
        shard = self._shards.get(collection)
        if shard is None:
            with self._opening:  # answers and a background sync may touch a collection first at the same time
                shard = self._shards.get(collection) or self._open(collection, qe.EdgeShard.load)
        return shard

    def _open(self, collection: str, opener: Any) -> qe.EdgeShard:
        folder = self._dir(collection)
        try:
            shard = opener(str(folder / "shard"))
        except Exception as exc:
            if "WouldBlock" in str(exc):
                raise IndexLockedError(self._locked_message(folder)) from exc
            raise IndexUnavailableError(f"Cannot open the {self.location} ({collection}): {exc}") from exc
        owner = {"pid": os.getpid(), "command": " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:])}
        owner["since"] = time.strftime("%Y-%m-%d %H:%M:%S")
        (folder / "owner.json").write_text(json.dumps(owner), encoding="utf-8")
        self._shards[collection] = shard
        return shard

    def _locked_message(self, folder: Path) -> str:
        holder = "another process"
        try:
            owner = json.loads((folder / "owner.json").read_text(encoding="utf-8"))
            holder = f"process {owner['pid']} (`{owner['command']}`, since {owner['since']})"
        except (OSError, ValueError, KeyError):
            pass
        return (
            f"The {self.location} is in use by {holder}; the embedded store admits one process at a time. "
            "Stop that process and try again, or run a Qdrant server (docker compose up -d qdrant) and set "
            "QDRANT_URL so several processes can share the index."
        )

    # -- points ------------------------------------------------------------------------------------
    def upsert(self, collection: str, points: Sequence[IndexPoint]) -> None:
        if points:
            self._shard(collection).update(qe.UpdateOperation.upsert_points([_point(p) for p in points]))

    def delete_file(self, collection: str, path: str, from_chunk: int = 0) -> None:
        conditions = [qe.FieldCondition("path", match=qe.MatchValue(path))]
        if from_chunk:
            conditions.append(qe.FieldCondition("chunk_index", range=qe.RangeFloat(gte=from_chunk)))
        self._shard(collection).update(qe.UpdateOperation.delete_points_by_filter(qe.Filter(must=conditions)))

    def scroll_payloads(
        self, collection: str, fields: Sequence[str], offset: Any = None
    ) -> tuple[list[Mapping[str, Any]], Any]:
        records, next_offset = self._shard(collection).scroll(
            qe.ScrollRequest(offset=offset, limit=_SCROLL_PAGE, with_payload=list(fields))
        )
        return [record.payload or {} for record in records], next_offset

    def query(self, collection: str, request: SearchRequest) -> list[Hit]:
        where = _filter(request)
        legs = _leg_queries(request)
        shard = self._shard(collection)
        if request.mode != "hybrid":
            (only_query,) = legs.values()
            only = qe.QueryRequest(limit=request.limit, query=only_query, filter=where, with_payload=True)
            return [_hit(p) for p in shard.query(only)]
        depth = request.leg_depth()
        fused = qe.QueryRequest(
            limit=request.limit,
            prefetches=[qe.Prefetch(depth, query=query, filter=where) for query in legs.values()],
            query=_fusion(request),
            with_payload=True,
        )
        if not request.explain:
            return [_hit(p) for p in shard.query(fused)]
        # One planned batch: the fusion query and each leg's own list (for each hit's rank per leg).
        fused_points, *leg_points = shard.query_batch(
            qe.QueryBatchRequest([fused, *self._leg_requests(request, legs, where)])
        )
        return explain_hits([_hit(p) for p in fused_points], leg_lists(list(legs), leg_points))

    def leg_places(self, collection: str, request: SearchRequest) -> dict[str, list[tuple[str, float]]]:
        legs = _leg_queries(request)
        batch = self._leg_requests(request, legs, _filter(request))
        return leg_lists(list(legs), self._shard(collection).query_batch(qe.QueryBatchRequest(batch)))

    @staticmethod
    def _leg_requests(request: SearchRequest, legs: dict[str, Any], where: Any) -> list[qe.QueryRequest]:
        depth = request.leg_depth()
        return [qe.QueryRequest(limit=depth, query=query, filter=where) for query in legs.values()]

    def finish_writes(self, collection: str) -> None:
        shard = self._shard(collection)
        shard.optimize()
        shard.flush()

    def close(self) -> None:
        for shard in self._shards.values():
            shard.close()
        self._shards.clear()


def _point(point: IndexPoint) -> qe.Point:
    vectors: dict[str, Any] = {DENSE_VECTOR: list(map(float, point.vector))}
    vectors.update({name: list(map(float, vector)) for name, vector in point.extra_vectors.items()})
    if point.sparse is not None:
        vectors[LEXICAL_VECTOR] = qe.SparseVector(list(point.sparse.indices), list(point.sparse.values))
    return qe.Point(point.id, vectors, dict(point.payload))


def _filter(request: SearchRequest) -> qe.Filter | None:
    """The request's filters as one Qdrant filter, given to every leg (a leg filtered only after fusion would
    have spent its depth on points the filter drops)."""
    conditions = [
        qe.FieldCondition(key, match=qe.MatchAny(value) if isinstance(value, list) else qe.MatchValue(value))
        for key, value in filter_terms(request.filters)
    ]
    return qe.Filter(must=conditions) if conditions else None


def _leg_queries(request: SearchRequest) -> dict[str, Any]:
    """Leg name -> its Qdrant query, in `SearchRequest.legs()` order."""
    queries: dict[str, Any] = {}
    for name, vector in request.legs():
        if name == LEXICAL_VECTOR:
            sparse = qe.SparseVector(list(vector.indices), list(vector.values))  # type: ignore[union-attr]
            queries[name] = qe.Query.Nearest(sparse, using=LEXICAL_VECTOR)
        else:
            queries[name] = qe.Query.Nearest(list(map(float, vector)), using=name)  # type: ignore[arg-type]
    return queries


def _fusion(request: SearchRequest) -> Any:
    if request.fusion.method == "dbsf":
        return qe.Fusion.Dbsf()
    return qe.Fusion.Rrf(k=request.fusion.k, weights=request.leg_weights())


def _hit(point: qe.ScoredPoint) -> Hit:
    return Hit(str(point.id), float(point.score), point.payload or {})
