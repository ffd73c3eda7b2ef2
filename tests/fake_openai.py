"""A local HTTP server that speaks the OpenAI chat-completions protocol, for tests at that boundary: a whole
completion, or with `"stream": true` server-sent events (`data: {chunk}` lines whose `choices[0].delta.content`
carry the reply piece by piece, then `data: [DONE]`), the way OpenAI-compatible servers stream. It also embeds
(`POST /v1/embeddings`, a vector made from a hash of each text, not normalised) and lists its models (`GET
/v1/models`, with vLLM's `max_model_len`)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def stream_pieces(reply: str) -> list[str]:
    """The reply cut into the pieces a streaming server sends: each word with the space before it."""
    return re.findall(r"\s*\S+", reply) or [reply]


def is_rewrite_request(body: dict) -> bool:
    """Whether a recorded request asks for a follow-up's standalone question (not for an answer)."""
    messages = body.get("messages") or []
    system = messages[0].get("content") if messages and messages[0].get("role") == "system" else ""
    return "standalone question" in (system or "")


def fake_embedding(text: str, dimension: int) -> list[float]:
    """The fake server's vector for `text`: the same text always gets the same one, of length about 8 to 16
    (not unit, as some servers send them), so a client that forgets to normalise is caught."""
    values: list[float] = []
    block = 0
    while len(values) < dimension:
        digest = hashlib.sha256(f"{block}:{text}".encode()).digest()
        values += [(b - 127.5) / 10 for b in struct.unpack("32B", digest)]
        block += 1
    return values[:dimension]


class FakeOpenAI(BaseHTTPRequestHandler):
    """Plays `POST /v1/chat/completions`, `POST /v1/embeddings` and `GET /v1/models`, and records what it was
    sent (a GET with `"body": None`)."""

    reply = "SSO needs the Business plan [1]; Okta is supported [2] [5]."
    requests: list[dict] = []  # noqa: RUF012 - shared by the test and the handler on purpose
    delay = 0.0  # before the answer (a slow LLM)
    piece_delay = 0.0  # between streamed pieces
    break_stream_after: int | None = None  # a stream that stops after this many pieces, without [DONE]
    # Replies by request: one whose system message contains a key gets its value instead of `reply`, another text
    # or an HTTP error status (e.g. the standalone-question rewrite answered apart from the answer, or failing).
    replies: dict[str, str | int] = {}  # noqa: RUF012 - set by the test, read by the handler
    rewrite_reply: str | None = None  # the reply to a follow-up's standalone rewrite request (else `reply`)
    # Embeddings: the models served (another model gets a 404, as from vLLM), their vector size and input limit
    # (None: `/v1/models` leaves `max_model_len` out, as OpenAI does).
    models: tuple[str, ...] = ("my-model",)
    dimension = 12
    max_model_len: int | None = 8192
    drop_embeddings = 0  # a broken server: this many vectors fewer than texts in each answer
    embedding_error: int | None = None  # an HTTP error status for every embeddings request

    def do_GET(self) -> None:
        FakeOpenAI.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": None})
        if self.path.rstrip("/") != "/v1/models":
            self._error(404)
            return
        listed = []
        for model in FakeOpenAI.models:
            entry: dict = {"id": model, "object": "model", "created": 0, "owned_by": "fake"}
            if FakeOpenAI.max_model_len is not None:
                entry["max_model_len"] = FakeOpenAI.max_model_len
            listed.append(entry)
        self._json({"object": "list", "data": listed})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeOpenAI.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if self.path.rstrip("/") == "/v1/embeddings":
            self._embed(body)
            return
        if FakeOpenAI.delay:
            threading.Event().wait(FakeOpenAI.delay)
        reply = self._reply_to(body)
        if isinstance(reply, int):
            self._error(reply)
            return
        if body.get("stream"):
            self._stream(body, reply)
            return
        payload = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": reply}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError):  # the client gave up waiting (an LLM timeout test)
            self.wfile.write(data)

    def _embed(self, body: dict) -> None:
        """`{"model", "input": str | [str], "encoding_format"}` answered as OpenAI does: one `embedding` object per
        text, each with its `index`, and a token count (words here)."""
        if FakeOpenAI.embedding_error is not None:
            self._error(FakeOpenAI.embedding_error)
            return
        if body.get("model") not in FakeOpenAI.models:
            self._error(404, f"The model `{body.get('model')}` does not exist.")
            return
        texts = [body["input"]] if isinstance(body["input"], str) else list(body["input"])
        data = [
            {"object": "embedding", "index": i, "embedding": fake_embedding(text, FakeOpenAI.dimension)}
            for i, text in enumerate(texts)
        ]
        data = data[: max(0, len(data) - FakeOpenAI.drop_embeddings)]
        tokens = sum(len(text.split()) for text in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        self._json({"object": "list", "data": data, "model": body["model"], "usage": usage})

    def _json(self, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError):
            self.wfile.write(data)

    @staticmethod
    def _reply_to(body: dict) -> str | int:
        """`reply`, or what `replies` says for a request with this system message."""
        if FakeOpenAI.rewrite_reply is not None and is_rewrite_request(body):
            return FakeOpenAI.rewrite_reply
        system = " ".join(str(m.get("content")) for m in body.get("messages", []) if m.get("role") == "system")
        return next((r for key, r in FakeOpenAI.replies.items() if key in system), FakeOpenAI.reply)

    def _error(self, status: int, message: str | None = None) -> None:
        """An error as OpenAI-compatible servers send one: the status and an `error` object."""
        error = {"message": message or f"fake error {status}", "type": "server_error", "code": status}
        data = json.dumps({"error": error})
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError):
            self.wfile.write(data.encode())

    def _stream(self, body: dict, reply: str | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()

        def chunk(delta: dict, finish_reason: str | None = None, **extra: object) -> dict:
            choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
            return {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": body["model"],
                "choices": [choice],
                **extra,
            }

        pieces = stream_pieces(self.reply if reply is None else reply)
        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": piece}) for piece in pieces]
        events.append(chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": 10, "completion_tokens": len(pieces), "total_tokens": 10 + len(pieces)}
            events.append({**chunk({}), "choices": [], "usage": usage})
        lines = [f"data: {json.dumps(event)}\n\n" for event in events] + ["data: [DONE]\n\n"]
        if FakeOpenAI.break_stream_after is not None:
            lines = lines[: 1 + FakeOpenAI.break_stream_after]  # the role chunk, then that many pieces
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for line in lines:
                self.wfile.write(line.encode())
                self.wfile.flush()
                if FakeOpenAI.piece_delay:
                    threading.Event().wait(FakeOpenAI.piece_delay)

    def log_message(self, *args: object) -> None:
        pass


class RunningFakeOpenAI:
    """A started fake server: `url` is its `/v1` base; `stop()` closes its port (a server that went away)."""

    def __init__(self) -> None:
        FakeOpenAI.requests = []
        FakeOpenAI.delay = FakeOpenAI.piece_delay = 0.0
        FakeOpenAI.break_stream_after = None
        FakeOpenAI.replies = {}
        FakeOpenAI.rewrite_reply = None
        FakeOpenAI.models = ("my-model",)
        FakeOpenAI.dimension = 12
        FakeOpenAI.max_model_len = 8192
        FakeOpenAI.drop_embeddings = 0
        FakeOpenAI.embedding_error = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self._stopped = False

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._server.shutdown()
            self._server.server_close()


@contextmanager
def running_fake_openai() -> Iterator[RunningFakeOpenAI]:
    server = RunningFakeOpenAI()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def serve_fake_openai() -> Iterator[str]:
    with running_fake_openai() as server:
        yield server.url
