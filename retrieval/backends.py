"""Picks the `Index` backend from configuration, so callers never branch on it."""

from __future__ import annotations

from retrieval.index import Index


def open_index(qdrant_url: str | None, qdrant_path: str, api_key: str | None = None, timeout: float = 10.0) -> Index:
    """The server backend when a URL is configured (":memory:" for qdrant-client's local mode), else the
    embedded Qdrant Edge store at `qdrant_path`."""
    if qdrant_url:
        from retrieval.server_index import QdrantServerIndex

        return QdrantServerIndex.connect(qdrant_url, api_key=api_key, timeout=timeout)
    from retrieval.edge_index import EdgeIndex

    return EdgeIndex(qdrant_path)
