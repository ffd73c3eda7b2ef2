"""Retrieval: loaders, chunking, embeddings, the Qdrant `Index` (embedded Edge or server) and search."""

from retrieval.backends import open_index
from retrieval.documents import Candidate, Chunk, LoadedDocument
from retrieval.embedders import Embedder, SentenceTransformerEmbedder, UniversalSentenceEncoder, load_embedders
from retrieval.errors import (
    CollectionMismatchError,
    CollectionNotFoundError,
    DocumentLoadError,
    EmbedderLoadError,
    EmbedderUnavailableError,
    IndexLockedError,
    IndexUnavailableError,
    RetrievalError,
)
from retrieval.index import RETRIEVAL_MODES, Index, RetrievalMode
from retrieval.ingest import IngestSummary, ingest_path
from retrieval.search import RetrievalResult, Retriever

__all__ = [
    "RETRIEVAL_MODES",
    "Candidate",
    "Chunk",
    "CollectionMismatchError",
    "CollectionNotFoundError",
    "DocumentLoadError",
    "Embedder",
    "EmbedderLoadError",
    "EmbedderUnavailableError",
    "Index",
    "IndexLockedError",
    "IndexUnavailableError",
    "IngestSummary",
    "LoadedDocument",
    "RetrievalError",
    "RetrievalMode",
    "RetrievalResult",
    "Retriever",
    "SentenceTransformerEmbedder",
    "UniversalSentenceEncoder",
    "ingest_path",
    "load_embedders",
    "open_index",
]
