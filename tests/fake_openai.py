"""A local HTTP server that speaks the OpenAI chat-completions protocol, for tests at that boundary."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI(BaseHTTPRequestHandler):
    """Plays `POST /v1/chat/completions` and records what it was sent."""

    reply = "SSO needs the Business plan [1]; Okta is supported [2] [5]."
    requests: list[dict] = []  # noqa: RUF012 - shared by the test and the handler on purpose
    delay = 0.0

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeOpenAI.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if FakeOpenAI.delay:
            threading.Event().wait(FakeOpenAI.delay)
        payload = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": self.reply}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError):  # the client gave up waiting (an LLM timeout test)
            self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serve_fake_openai() -> Iterator[str]:
    FakeOpenAI.requests = []
    FakeOpenAI.delay = 0.0
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()
