"""A local HTTP server that plays Slack's Web API (and `response_url`s), recording every call, the way
bolt-python's own test suite does. Point `WebClient(base_url=...)` / SLACK_API_URL at `FakeSlack.api_url`.

Besides messages, reactions, threads and modals it plays the AI-app surfaces: `assistant.threads.setStatus`,
`.setSuggestedPrompts` and `.setTitle`, and streamed messages (`chat.startStream` / `appendStream` /
`stopStream`), answering and failing the way Slack does."""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    token: str | None
    at: float


@dataclass
class Stream:
    """A message streamed with `chat.startStream`: its text so far and, once stopped, its final blocks."""

    channel: str
    thread_ts: str
    ts: str
    text: str = ""
    streaming: bool = True
    blocks: list[dict[str, Any]] | None = None
    updated: bool = False  # replaced with chat.update: `text` and `blocks` are the update's


MAX_SUGGESTED_PROMPTS = 4


def _streamed_text(args: dict[str, Any]) -> str:
    """The Markdown a stream call adds: its `markdown_text` and its `markdown_text` chunks, in order."""
    text = args.get("markdown_text") or ""
    chunks = args.get("chunks")
    if isinstance(chunks, str):  # sent form-encoded
        chunks = json.loads(chunks)
    for chunk in chunks or []:
        if isinstance(chunk, dict) and chunk.get("type") == "markdown_text":
            text += chunk.get("text") or ""
    return text


def _missing(args: dict[str, Any], *names: str) -> bool:
    return any(not args.get(name) for name in names)


class FakeSlack:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.thread_messages: dict[tuple[str, str], list[dict[str, Any]]] = {}  # for conversations.replies
        self.rate_limit_next: dict[str, int] = {}  # method -> how many 429s to answer before succeeding
        self.socket_url: str | None = None  # what apps.connections.open hands out
        self.auth_error: str | None = None  # e.g. "invalid_auth": auth.test fails like Slack does
        self.errors: dict[str, str] = {}  # method -> the error Slack answers it with (while set)
        # channel -> the error chat.postMessage answers there with (e.g. "not_in_channel"), other channels unhurt
        self.channel_errors: dict[str, str] = {}
        self.streams: dict[str, Stream] = {}  # by the streamed message's ts
        # the workspace's channels, as conversations.list / users.conversations describe them (see `channel()`)
        self.channels: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                if "json" in (self.headers.get("Content-Type") or ""):
                    args = json.loads(raw or "{}")
                else:
                    args = {k: v[0] for k, v in parse_qs(raw).items()}
                    for key in ("blocks", "view", "attachments", "prompts", "chunks"):
                        if isinstance(args.get(key), str):
                            args[key] = json.loads(args[key])
                method = self.path.rsplit("/", 1)[-1] if self.path.startswith("/api/") else "response_url"
                auth = self.headers.get("Authorization", "")
                status, body, headers = fake.answer(method, args, auth.removeprefix("Bearer ") or None)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                """Methods slack_sdk calls with GET (conversations.list, users.conversations): arguments in the
                query string, the token in the Authorization header."""
                url = urlsplit(self.path)
                args = {k: v[0] for k, v in parse_qs(url.query).items()}
                auth = self.headers.get("Authorization", "")
                status, body, headers = fake.answer(
                    url.path.rsplit("/", 1)[-1], args, auth.removeprefix("Bearer ") or None
                )
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.api_url = self.base_url + "/api/"

    def start(self) -> FakeSlack:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- what Slack answers ------------------------------------------------------------------------
    def answer(self, method: str, args: dict[str, Any], token: str | None) -> tuple[int, dict[str, Any], dict]:
        with self._lock:
            if self.rate_limit_next.get(method, 0) > 0:
                self.rate_limit_next[method] -= 1
                self.calls.append(Call(method + ":429", args, token, time.time()))
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}
            self.calls.append(Call(method, args, token, time.time()))
            ts = f"1700000000.{next(self._ts):06d}"
        if method == "auth.test" and self.auth_error:
            return 200, {"ok": False, "error": self.auth_error}, {}
        if method in self.errors:
            return 200, {"ok": False, "error": self.errors[method]}, {}
        if method == "chat.postMessage" and args.get("channel") in self.channel_errors:
            return 200, {"ok": False, "error": self.channel_errors[args["channel"]]}, {}
        if method.startswith("assistant.threads."):
            return 200, self._assistant_thread(method, args), {}
        if method in ("chat.startStream", "chat.appendStream", "chat.stopStream"):
            return 200, self._stream(method, args, ts), {}
        if method == "auth.test":
            return 200, {"ok": True, "team_id": "T1", "user_id": BOT_USER_ID, "bot_id": BOT_ID, "user": "ragbot"}, {}
        if method == "chat.update":
            return 200, self._update(args), {}
        if method == "chat.postEphemeral":
            if _missing(args, "channel", "user"):
                return 200, {"ok": False, "error": "invalid_arguments"}, {}
            if _missing(args, "text") and _missing(args, "blocks"):
                return 200, {"ok": False, "error": "no_text"}, {}
            return 200, {"ok": True, "message_ts": ts}, {}  # Slack's shape: no channel, no ts
        if method == "chat.postMessage":
            return 200, {"ok": True, "channel": args.get("channel"), "ts": ts, "message_ts": ts}, {}
        if method == "chat.getPermalink":
            if _missing(args, "channel", "message_ts"):
                return 200, {"ok": False, "error": "invalid_arguments"}, {}
            link = f"https://fake.slack.example/archives/{args['channel']}/p{args['message_ts'].replace('.', '')}"
            return 200, {"ok": True, "channel": args["channel"], "permalink": link}, {}
        if method == "conversations.replies":
            return 200, self._replies(args), {}
        if method == "apps.connections.open":
            return 200, {"ok": True, "url": self.socket_url}, {}
        if method in ("conversations.list", "users.conversations"):
            return 200, self._conversations(method, args), {}
        if method == "views.open":
            return 200, {"ok": True, "view": {"id": "V1", **(args.get("view") or {})}}, {}
        return 200, {"ok": True}, {}

    def _replies(self, args: dict[str, Any]) -> dict[str, Any]:
        """A thread's messages; with a `limit`, one page of them and the cursor of the next, as Slack pages."""
        messages = self.thread_messages.get((args.get("channel"), args.get("ts")), [])
        limit = int(args.get("limit") or 0) or len(messages) or 1
        start = int(args.get("cursor") or 0)
        page, more = messages[start : start + limit], start + limit < len(messages)
        metadata = {"next_cursor": str(start + limit) if more else ""}
        return {"ok": True, "messages": page, "has_more": more, "response_metadata": metadata}

    def channel(
        self, channel_id: str, name: str, *, member: bool = True, private: bool = False, archived: bool = False
    ) -> dict[str, Any]:
        """Add a channel to the workspace (a conversation object with the fields both list methods return)."""
        channel = {
            "id": channel_id,
            "name": name,
            "is_channel": not private,
            "is_group": private,
            "is_im": False,
            "is_mpim": False,
            "is_private": private,
            "is_archived": archived,
            "is_member": member,
            "created": 1700000000,
        }
        self.channels.append(channel)
        return channel

    def _conversations(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """conversations.list (every channel of the asked types, `is_member` telling the caller's) or
        users.conversations (only the caller's channels), paged like Slack: `limit` per page (at most 999 or
        1000), the next page's opaque `response_metadata.next_cursor`, "" on the last page."""
        types = set((args.get("types") or "public_channel").split(","))
        if not types <= {"public_channel", "private_channel", "mpim", "im"}:
            return {"ok": False, "error": "invalid_types"}
        limit = int(args.get("limit") or 100)
        if not 1 <= limit <= (1000 if method == "conversations.list" else 999):
            return {"ok": False, "error": "invalid_limit"}
        cursor = args.get("cursor") or ""
        if cursor and not (cursor.startswith("next:") and cursor[5:].isdigit()):
            return {"ok": False, "error": "invalid_cursor"}
        skip_archived = str(args.get("exclude_archived") or "").lower() in ("1", "true")
        wanted = [
            c
            for c in self.channels
            if ("private_channel" if c["is_private"] else "public_channel") in types
            and not (skip_archived and c["is_archived"])
            and (method == "conversations.list" or c["is_member"])
        ]
        start = int(cursor[5:]) if cursor else 0
        page, more = wanted[start : start + limit], start + limit < len(wanted)
        return {
            "ok": True,
            "channels": page,
            "response_metadata": {"next_cursor": f"next:{start + limit}" if more else ""},
        }

    def _assistant_thread(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        required = {
            "assistant.threads.setStatus": ("channel_id", "thread_ts"),  # an empty status clears it
            "assistant.threads.setTitle": ("channel_id", "thread_ts", "title"),
            "assistant.threads.setSuggestedPrompts": ("channel_id", "prompts"),
        }.get(method)
        if required is None:
            return {"ok": False, "error": "unknown_method"}
        if _missing(args, *required) or (method.endswith("setStatus") and "status" not in args):
            return {"ok": False, "error": "invalid_arguments"}
        if method.endswith("setSuggestedPrompts"):
            prompts = args["prompts"]
            well_formed = isinstance(prompts, list) and all(
                isinstance(p, dict) and p.get("title") and p.get("message") for p in prompts
            )
            if not well_formed or len(prompts) > MAX_SUGGESTED_PROMPTS:
                return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True}

    def _stream(self, method: str, args: dict[str, Any], ts: str) -> dict[str, Any]:
        channel = args.get("channel")
        if method == "chat.startStream":
            if _missing(args, "channel", "thread_ts"):
                return {"ok": False, "error": "invalid_arguments"}
            if not str(channel).startswith("D") and _missing(args, "recipient_team_id", "recipient_user_id"):
                return {"ok": False, "error": "invalid_arguments"}  # a channel stream names whom it answers
            with self._lock:
                self.streams[ts] = Stream(channel, args["thread_ts"], ts, _streamed_text(args))
            return {"ok": True, "channel": channel, "ts": ts}
        if _missing(args, "channel", "ts"):
            return {"ok": False, "error": "invalid_arguments"}
        with self._lock:
            stream = self.streams.get(args["ts"])
            if stream is None or stream.channel != channel:
                return {"ok": False, "error": "message_not_found"}
            if not stream.streaming:
                return {"ok": False, "error": "message_not_in_streaming_state"}
            stream.text += _streamed_text(args)
            if method == "chat.stopStream":
                stream.streaming = False
                blocks = args.get("blocks")
                stream.blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
        if method == "chat.stopStream":
            message = {"type": "message", "ts": stream.ts, "text": stream.text, "blocks": stream.blocks or []}
            return {"ok": True, "channel": channel, "ts": stream.ts, "message": message}
        return {"ok": True, "channel": channel, "ts": stream.ts}

    def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        """chat.update; a streamed message's update replaces what its stream showed."""
        if _missing(args, "channel", "ts"):
            return {"ok": False, "error": "invalid_arguments"}
        with self._lock:
            stream = self.streams.get(args["ts"])
            if stream is not None and stream.channel == args["channel"]:
                stream.text, stream.blocks, stream.updated = args.get("text") or "", args.get("blocks"), True
        return {"ok": True, "channel": args["channel"], "ts": args["ts"], "text": args.get("text") or ""}

    # -- for assertions ----------------------------------------------------------------------------
    def answers(self) -> list[Call]:
        """Every answer delivered, in order: posted (an answer carries blocks; a notice does not) or streamed and
        stopped with its blocks (then `args` holds the stream's channel, thread_ts, whole text and final blocks)."""
        delivered = []
        with self._lock:
            calls = list(self.calls)
        for call in calls:
            if call.method == "chat.postMessage" and call.args.get("blocks"):
                delivered.append(call)
            elif call.method == "chat.stopStream" and call.args.get("blocks") and call.args.get("ts") in self.streams:
                stream = self.streams[call.args["ts"]]
                args = {"channel": stream.channel, "thread_ts": stream.thread_ts, "text": stream.text}
                delivered.append(Call(call.method, {**args, "blocks": stream.blocks}, call.token, call.at))
        return delivered

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 60.0) -> list[Call]:
        """Wait until `method` was called at least `count` times; returns those calls."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            calls = self.calls_to(method)
            if len(calls) >= count:
                return calls
            time.sleep(0.05)
        raise AssertionError(f"{method} called {len(self.calls_to(method))} times, expected {count}")


class FakeSocketModeServer:
    """Plays Slack's Socket Mode WebSocket: says hello, pushes envelopes, records the client's acks.
    `FakeSlack.socket_url` makes `apps.connections.open` hand out its address."""

    def __init__(self) -> None:
        from websockets.sync.server import serve

        self.received: list[dict[str, Any]] = []
        self._connections: list[Any] = []
        self._lock = threading.Lock()
        self._server = serve(self._handle, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}/link"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _handle(self, connection: Any) -> None:
        with self._lock:
            self._connections.append(connection)
        connection.send(json.dumps({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A1"}}))
        for message in connection:
            with self._lock:
                self.received.append(json.loads(message))

    def push(self, envelope: dict[str, Any], timeout: float = 30.0) -> None:
        """Send an envelope on the (first) client connection, waiting for one to exist."""
        deadline = time.time() + timeout
        while not self._connections:
            if time.time() > deadline:
                raise AssertionError("no Socket Mode client connected")
            time.sleep(0.05)
        self._connections[0].send(json.dumps(envelope))

    def wait_for_ack(self, envelope_id: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self._lock:
                for message in self.received:
                    if message.get("envelope_id") == envelope_id:
                        return message
            time.sleep(0.05)
        raise AssertionError(f"envelope {envelope_id} was not acknowledged")

    def stop(self) -> None:
        self._server.shutdown()
