"""`HttpReranker`: the `Reranker` protocol against any `/v1/rerank` server.

Works with `ragbot rerank-server`, vLLM (`--runner pooling`), infinity, and Cohere/Jina-compatible APIs: it
POSTs `{"query", "documents", "top_n": len(documents), "return_documents": false}` (+ `"model"` when set) and maps
`results[*].index` / `relevance_score` back to input order. A bare list of `{"index", "score"}` (the
text-embeddings-inference shape) is read too.

Instructions (Qwen3's `<Instruct>`):
- `instruction_mode="auto"` sends them in an `instruction` field, which ragbot's server honours and other
  servers ignore (servers without it score with their own default);
- `instruction_mode="query"` sends `"<Instruct>: {instruction}\\n<Query>: {query}"` as the query, the way vLLM
  users pass Qwen3 instructions (no instruction given: the model card's default).

Scores: servers that return raw logits (any score outside [0, 1], e.g. infinity with `raw_scores`) are mapped
through a sigmoid, all of them, so the order is kept; scores already in [0, 1] are passed through unchanged.
(A response of logits that all happen to fall inside [0, 1] cannot be told apart and stays as it is.)

Failures: each attempt has `timeout` seconds; connection errors and 5xx answers (503 included) are retried
ONCE, after the server's `Retry-After` (at most `max_retry_after` seconds) or a short pause. Whatever still
fails raises `RerankerUnavailableError`, one line that names the URL with its credentials masked
(`user:***@`, `?api_key=***`): the message reaches Slack answers, the ranking log and the admin pages.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx

from redact import mask_secrets
from rerank.base import DEFAULT_INSTRUCTION

__all__ = ["HttpReranker", "RerankerUnavailableError"]


class RerankerUnavailableError(RuntimeError):
    """A remote reranker could not answer (unreachable, timed out, overloaded, an error or a malformed reply)."""


def _format_query(instruction: str | None, query: str) -> str:
    inst = instruction if instruction and instruction.strip() else DEFAULT_INSTRUCTION
    return f"<Instruct>: {inst}\n<Query>: {query}"


def _endpoint(url: str) -> str:
    """A base URL gets `/v1/rerank`; a URL that already ends in `.../rerank` is used as is."""
    url = url.strip()
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"the reranker URL must start with http:// or https://, not {mask_secrets(url)!r}")
    base = url.rstrip("/")
    return base if base.endswith("/rerank") else base + "/v1/rerank"


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


class HttpReranker:
    """A `Reranker` served over HTTP (`POST {url}/v1/rerank`). Scores come back in input order, each in [0, 1].

    `url`: the server's base URL (`http://reranker:8080`) or the full endpoint (`.../v1/rerank`, `.../rerank`).
    `model`: sent as `"model"` (Cohere, Jina and vLLM want it; ragbot's server ignores it).
    Raises `RerankerUnavailableError` when the server cannot answer; see the module docstring.
    """

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        timeout: float = 30.0,
        model: str | None = None,
        instruction_mode: Literal["auto", "query"] = "auto",
        *,
        max_retry_after: float = 5.0,
        retry_pause: float = 0.2,
    ) -> None:
        if instruction_mode not in ("auto", "query"):
            raise ValueError(f"instruction_mode must be 'auto' or 'query', not {instruction_mode!r}")
        self.url = _endpoint(url)
        self.shown_url = mask_secrets(self.url)  # what names, errors and logs show
        self.model = model
        self.timeout = float(timeout)
        self.instruction_mode = instruction_mode
        self.max_retry_after = float(max_retry_after)
        self.retry_pause = float(retry_pause)
        self.name = model or self.shown_url
        self.server_model: str | None = None  # the "model" the server last answered with
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._headers = headers
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HttpReranker(url={self.shown_url!r}, model={self.model!r}, instruction_mode={self.instruction_mode!r})"

    # -- the protocol ------------------------------------------------------------------------------------

    def score(self, query: str, documents: Sequence[str], instruction: str | None = None) -> list[float]:
        """Relevance of each document to the query, in input order, each in [0, 1]."""
        if isinstance(documents, str):
            raise TypeError("documents must be a sequence of strings, not a single string")
        docs = list(documents)
        if not docs:
            return []
        body: dict[str, Any] = {"query": query, "documents": docs, "top_n": len(docs), "return_documents": False}
        if self.model:
            body["model"] = self.model
        if self.instruction_mode == "query":
            body["query"] = _format_query(instruction, query)
        elif instruction is not None:
            body["instruction"] = instruction
        payload = self._post(body)
        return self._scores(payload, len(docs))

    # -- HTTP --------------------------------------------------------------------------------------------

    def _http(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self.timeout, headers=self._headers, follow_redirects=True)
            return self._client

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _fail(self, reason: str) -> RerankerUnavailableError:
        return RerankerUnavailableError(mask_secrets(f"Reranker at {self.url} is unavailable: {reason}"))

    def _post(self, body: dict[str, Any]) -> Any:
        client = self._http()
        for attempt in (1, 2):
            last = attempt == 2
            try:
                response = client.post(self.url, json=body)
            except httpx.TimeoutException as exc:
                # The server took the whole timeout: asking it again would only double the wait.
                raise self._fail(f"no answer within {self.timeout:g} s ({type(exc).__name__})") from exc
            except httpx.TransportError as exc:
                if last:
                    raise self._fail(f"cannot connect ({type(exc).__name__}: {exc})") from exc
                time.sleep(self.retry_pause)
                continue
            if response.status_code >= 500:
                if last:
                    raise self._fail(f"HTTP {response.status_code} ({self._error_text(response)})")
                wait = _retry_after_seconds(response.headers.get("Retry-After"))
                time.sleep(min(self.max_retry_after, wait if wait is not None else self.retry_pause))
                continue
            if response.status_code >= 400:
                raise self._fail(f"HTTP {response.status_code} ({self._error_text(response)})")
            try:
                return response.json()
            except ValueError as exc:
                raise self._fail("the answer is not JSON") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _error_text(response: httpx.Response) -> str:
        try:
            data = response.json()
        except ValueError:
            text = response.text.strip().splitlines()[0] if response.text.strip() else response.reason_phrase
            return text[:200]
        if isinstance(data, dict):
            err = data.get("error")
            if isinstance(err, dict) and err.get("message"):
                return str(err["message"])[:200]
            for key in ("message", "detail", "error"):
                if data.get(key):
                    return str(data[key])[:200]
        return str(data)[:200]

    def _scores(self, payload: Any, n: int) -> list[float]:
        if isinstance(payload, dict):
            if isinstance(payload.get("model"), str):
                self.server_model = payload["model"]
            results = payload.get("results", payload.get("data"))
        else:
            results = payload  # text-embeddings-inference: a bare list
        if not isinstance(results, list):
            raise self._fail("the answer has no 'results' list")
        scores: list[float | None] = [None] * n
        for item in results:
            if not isinstance(item, dict):
                raise self._fail("a result is not an object")
            index = item.get("index")
            value = item.get("relevance_score", item.get("score"))
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
                raise self._fail(f"a result has an invalid index {index!r} for {n} documents")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise self._fail(f"result {index} has no numeric relevance_score")
            scores[index] = float(value)
        missing = [i for i, s in enumerate(scores) if s is None]
        if missing:
            raise self._fail(f"the answer scores {n - len(missing)} of {n} documents (missing index {missing[0]})")
        out = [float(s) for s in scores if s is not None]
        if any(s < 0.0 or s > 1.0 for s in out):  # raw logits: map them all, keeping the order
            out = [_sigmoid(s) for s in out]
        return out
