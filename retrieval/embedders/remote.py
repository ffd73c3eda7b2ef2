"""An OpenAI-compatible `/v1/embeddings` server (vLLM, TEI, Ollama, OpenAI) as an embedder: a GPU box serving
Qwen3-Embedding or bge-m3 for every process that ingests or searches, instead of a model in each of them.

The server is asked once at start: one probe request gives the vector size (a wrong EMBED_URL, EMBED_MODEL or
EMBED_API_KEY fails there with `EmbedderLoadError`), and `GET /models` the longest input (`max_model_len`,
vLLM's field; None where the server does not say). Later failures raise `EmbedderUnavailableError`. Messages
name the URL with its credentials masked and never quote the API key.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from urllib.parse import urlparse

import numpy as np
import openai

from redact import MASK, mask_secrets
from retrieval.embedders.base import Embedder
from retrieval.embedders.prompts import known_prompts
from retrieval.errors import EmbedderLoadError, EmbedderUnavailableError, first_line

log = logging.getLogger(__name__)

# Texts per request: large enough for the server to fill its GPU batches, small enough to stay well inside its
# request limits (OpenAI takes 2048 inputs, TEI 32 by default, raised with --max-client-batch-size).
REQUEST_BATCH = 64
_PROBE_TEXT = "ragbot embedding probe"
_CHECK = "Is the server running? Check EMBED_URL (the server's /v1 address), EMBED_MODEL and EMBED_API_KEY."


class _BadResponse(Exception):
    """The server answered, but not with one vector per input text of the expected size."""


class RemoteEmbedder(Embedder):
    """`name` is the server's model id. Queries and passages get the prompts the model's card gives, found by its
    id (`retrieval.embedders.prompts`: Qwen3-Embedding's query instruction, e5's "query: " / "passage: "); a
    model not listed there (bge-m3) gets the texts as they are."""

    def __init__(
        self,
        model: str,
        url: str,
        api_key: str | None = None,
        timeout: float = 30.0,
        batch_size: int = REQUEST_BATCH,
    ) -> None:
        self.name = model
        self.prompts = known_prompts(model)
        self._api_key = api_key or ""
        self.location = f"embedding server at {mask_secrets(url.rstrip('/'))}" if url else "embedding server"
        self._batch = max(1, batch_size)
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise EmbedderLoadError(
                f"EMBED_URL {mask_secrets(url)!r} is not an http(s) URL: set it to the server's OpenAI-compatible "
                "/v1 address, e.g. http://gpu:8000/v1."
            )
        if not model:
            raise EmbedderLoadError(f"EMBED_MODEL is empty: name the model the {self.location} serves.")
        # One retry: a blip is worth one more try, a dead server is not worth making a question wait.
        self._client = openai.OpenAI(
            base_url=url, api_key=self._api_key or "not-needed", timeout=timeout, max_retries=1
        )
        try:
            probe = self._request([_PROBE_TEXT], dimension=None)
        except openai.OpenAIError as exc:
            raise EmbedderLoadError(f"Cannot embed with {model!r} at the {self.location}: {self._why(exc)}") from exc
        except _BadResponse as exc:
            raise EmbedderLoadError(
                f"The {self.location} answered the probe for {model!r} with {exc}: set EMBED_URL to the /v1 "
                "address of an OpenAI-compatible embeddings server and EMBED_MODEL to a model it serves."
            ) from exc
        self.dimension = int(probe.shape[1])
        self.max_tokens = self._model_length()

    # -- the protocol ------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embed passages; rows are unit vectors (float32), in the order of `texts`. A request carries up to the
        constructor's `batch_size` texts (`batch_size` here is the in-process batch of the local models; the
        server batches on its GPU itself)."""
        return self._embed([self.prompts.passage + text for text in texts])

    def encode_query(self, text: str) -> np.ndarray:
        return self._embed([self.prompts.query + text])[0]

    def count_tokens(self, text: str) -> int:
        """Estimated (the server's tokenizer is not at hand), with the passage prompt the server will read."""
        return super().count_tokens(self.prompts.passage + text)

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        rows = []
        for start in range(0, len(texts), self._batch):
            batch = list(texts[start : start + self._batch])
            try:
                rows.append(self._request(batch, dimension=self.dimension))
            except openai.OpenAIError as exc:
                raise EmbedderUnavailableError(
                    f"The {self.location} failed to embed with {self.name!r}: {self._why(exc)}"
                ) from exc
            except _BadResponse as exc:
                raise EmbedderUnavailableError(
                    f"The {self.location} answered {len(batch)} texts for {self.name!r} with {exc}. Is EMBED_URL "
                    "still the server the collection was built with?"
                ) from exc
        return np.concatenate(rows)

    def _request(self, texts: list[str], dimension: int | None) -> np.ndarray:
        """One `POST /embeddings`: the rows in input order (by `index`), L2-normalised (servers differ)."""
        # An empty string is refused by OpenAI and some servers; a blank embeds as nothing just the same.
        response = self._client.embeddings.create(
            model=self.name, input=[text or " " for text in texts], encoding_format="float"
        )
        try:
            items = sorted(response.data, key=lambda item: item.index)
            indexes = [item.index for item in items]
            vectors = np.asarray([item.embedding for item in items], dtype=np.float32)
        except (AttributeError, TypeError, ValueError) as exc:
            raise _BadResponse(f"something other than a list of embeddings ({first_line(exc, 120)})") from exc
        if indexes != list(range(len(texts))):
            raise _BadResponse(f"{len(items)} vector{'' if len(items) == 1 else 's'} (indexes {_preview(indexes)})")
        if vectors.ndim != 2 or vectors.shape[1] == 0:
            raise _BadResponse("vectors that are not one list of numbers each")
        if dimension is not None and vectors.shape[1] != dimension:
            raise _BadResponse(f"{vectors.shape[1]}-d vectors where it gave {dimension}-d ones before")
        if not np.isfinite(vectors).all():
            raise _BadResponse("vectors that contain NaN or infinity")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, np.finfo(np.float32).tiny)

    def _model_length(self) -> int | None:
        """The model's `max_model_len` from `GET /models` (vLLM's extension of the model object), else None."""
        try:
            for model in self._client.models.list():
                if model.id == self.name:
                    length = (model.model_extra or {}).get("max_model_len")
                    return int(length) if isinstance(length, int | float) and length > 0 else None
        except Exception as exc:  # optional: a server without /models still embeds
            log.info("The %s does not list its models (%s); max_tokens unknown", self.location, self._safe(exc))
        return None

    # -- messages ----------------------------------------------------------------------------------
    def _safe(self, exc: BaseException | str) -> str:
        """One line of `exc` with URL credentials and the API key (should a server echo it) masked."""
        text = mask_secrets(first_line(exc) if isinstance(exc, BaseException) else exc)
        return text.replace(self._api_key, MASK) if len(self._api_key) >= 4 else text

    def _why(self, exc: openai.OpenAIError) -> str:
        """What went wrong and what to check, for each way the client fails."""
        if isinstance(exc, openai.APITimeoutError):
            return f"no answer within the timeout (EMBED_TIMEOUT). {_CHECK}"
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc
            return f"cannot connect ({self._safe(cause)}). {_CHECK}"
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return f"HTTP {exc.status_code}, the API key was refused: check EMBED_API_KEY."
        if isinstance(exc, openai.NotFoundError):
            return (
                f"HTTP 404 ({self._safe(exc)}): check that EMBED_MODEL is a model id the server lists at "
                "GET /models and that EMBED_URL ends in /v1."
            )
        if isinstance(exc, openai.APIStatusError):
            return f"HTTP {exc.status_code} ({self._safe(exc)}). {_CHECK}"
        return f"{type(exc).__name__}: {self._safe(exc)}. {_CHECK}"


def _preview(numbers: list[int], limit: int = 8) -> str:
    shown = ", ".join(map(str, numbers[:limit]))
    return shown + (", ..." if len(numbers) > limit else "") if numbers else "none"
