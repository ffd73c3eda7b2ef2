"""Sources that keep a collection current: connectors that walk a folder, a website, a wiki or a help center, and
the sync engine that writes what changed."""

from retrieval.sources.base import (
    Changed,
    Connector,
    DocumentMeta,
    Failed,
    Item,
    KnownDocument,
    SourceAuthError,
    SourceError,
    Unchanged,
)

__all__ = [
    "Changed",
    "Connector",
    "DocumentMeta",
    "Failed",
    "Item",
    "KnownDocument",
    "SourceAuthError",
    "SourceError",
    "Unchanged",
]
