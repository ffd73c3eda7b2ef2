"""Errors retrieval raises for users: each message says what went wrong and what to do."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """Short error lines for users; the whole exception stays chained (`raise ... from exc`) for the log."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:limit]


class RetrievalError(RuntimeError):
    """Base class for retrieval errors shown to users as one clear line."""


class DocumentLoadError(RetrievalError):
    """A file could not be read as a document (corrupt PDF, wrong encoding, no text...)."""


class EmbedderLoadError(RetrievalError):
    """The embedding model could not be loaded."""


class EmbedderUnavailableError(RetrievalError):
    """A remote embedding server that answered at start stopped answering (gone, an HTTP error, a timeout) or
    answered with the wrong vectors: ingest stops, a question fails with this message instead of a traceback."""


class IndexUnavailableError(RetrievalError):
    """The Qdrant server cannot be reached or answered with an error."""


class IndexLockedError(RetrievalError):
    """Another process holds the embedded Qdrant Edge store."""


class CollectionMismatchError(RetrievalError):
    """The collection was built with another embedding model or vector size."""


class CollectionNameError(RetrievalError, ValueError):
    """A name that breaks the collection-name rule (`retrieval.names.check_collection_name`) reached an index."""


class CollectionNotFoundError(RetrievalError):
    """The collection does not exist yet (nothing ingested)."""


class LegacyCollectionError(RetrievalError):
    """The collection has no lexical vector (or another lexical model's terms): it needs `ingest --rebuild`."""
