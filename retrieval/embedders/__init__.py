"""Embedding models behind one interface (`Embedder`): sentence-transformers in process, the bundled multilingual
Universal Sentence Encoder, the opt-in 4-bit multilingual-e5-small, or an OpenAI-compatible `/v1/embeddings`
server. `load_embedders` reads the
configuration; a collection stores one dense vector per configured embedder."""

from retrieval.embedders.base import Embedder
from retrieval.embedders.e5_small import E5_SMALL_NAME, MultilingualE5Small
from retrieval.embedders.loading import DEFAULT_EMBED_MODELS, EMBED_BACKENDS, embedder_models, load_embedders
from retrieval.embedders.sentence_transformer import BUNDLED_MODEL_NAME, SentenceTransformerEmbedder, missing_cuda
from retrieval.embedders.universal_encoder import BUNDLED_USE_NAME, UniversalSentenceEncoder

__all__ = [
    "BUNDLED_MODEL_NAME",
    "BUNDLED_USE_NAME",
    "DEFAULT_EMBED_MODELS",
    "E5_SMALL_NAME",
    "EMBED_BACKENDS",
    "Embedder",
    "MultilingualE5Small",
    "SentenceTransformerEmbedder",
    "UniversalSentenceEncoder",
    "embedder_models",
    "load_embedders",
    "missing_cuda",
]
