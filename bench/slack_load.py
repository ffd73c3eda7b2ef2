"""Load-test the Slack path of `ragbot serve`: signed `app_mention` events at 5, 20 and 50 per second for 60 s.

The bot is `ragbot serve`'s own wiring (HTTP adapter, signature check, claim + durable job in one transaction,
the answer workers, Block Kit replies) on a free port in this process, against a local stand-in for Slack's Web
API. Answering itself is replaced by a fixed cost (`--cost`, default 0.1 s per question), so what is measured
is the Slack layer and the durable queue, not the models.

Per rate it prints the ack latency (p50/p99), the queue depth over time (questions queued or being answered,
read from the database every second), answers per second, and questions lost or answered twice (both must be
0). With SLACK_WORKERS=4 and a 0.1 s cost the bot answers about 40 a second: at 50 a second the queue grows
and must drain after the load stops.

    python bench/slack_load.py                       # 5, 20, 50 per second, 60 s each, SQLite
    python bench/slack_load.py --seconds 10 --rates 50 --database postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SIGNING_SECRET = "bench-signing-secret"


class _DeepBacklogServer(ThreadingHTTPServer):
    request_queue_size = 256  # bursts of replies: no connection resets from a short listen backlog


class SlackStandIn:
    """Slack's Web API as far as the bot uses it: auth.test, chat.postMessage, chat.postEphemeral, reactions."""

    def __init__(self) -> None:
        self.answers: list[str] = []  # thread_ts of each answer posted
        self.lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                method = self.path.rsplit("/", 1)[-1]
                try:
                    args = json.loads(raw) if raw.startswith("{") else {}
                except ValueError:
                    args = {}
                if method == "chat.postMessage" and args.get("blocks"):
                    with stand_in.lock:
                        stand_in.answers.append(args.get("thread_ts"))
                body = {"ok": True, "ts": f"{time.time():.6f}", "channel": args.get("channel", "C1")}
                if method == "auth.test":
                    body |= {"user_id": "UBOT", "bot_id": "BBOT", "team_id": "T1", "user": "ragbot"}
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = _DeepBacklogServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class FixedCostAnswers:
    """Stands in for the answer service: every question costs `cost` seconds and gets a one-source answer."""

    def __init__(self, cost: float) -> None:
        self.cost = cost

    def ask(self, question: str, **_: Any) -> Any:
        from bot.answering import AnswerStatus, AskResult, Citation, PresetSnapshot, RerankStatus

        time.sleep(self.cost)
        preset = PresetSnapshot(None, "default", 1, "instruction", 20, 3, 0.0, "kb")
        citation = Citation(1, "Doc", "", "https://docs.example/doc", 0.9)
        return AskResult(
            question, "An answer [1].", AnswerStatus.OK, [citation], [], preset, RerankStatus.done(), "x", "x", None
        )


def start_bot(database: str, workers: int, cost: float, slack: SlackStandIn, folder: Path) -> tuple[Any, Any, str]:
    import uvicorn

    from bot.app import Components
    from bot.app.web import build_service
    from bot.settings import Settings

    settings = Settings(
        _env_file=None,
        database_url=database,
        qdrant_path=str(folder / "qdrant"),
        slack_bot_token="xoxb-bench",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.url,
        slack_workers=workers,
        ranking_spool_dir=str(folder / "spool"),
    )
    parts = Components(settings, answers=FixedCostAnswers(cost))
    service = build_service(parts)
    service.start()
    server = uvicorn.Server(uvicorn.Config(service.http, host="127.0.0.1", port=0, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return parts, (server, service), f"http://127.0.0.1:{port}/slack/events"


def open_jobs(parts: Any) -> int:
    import store

    with parts.sessions() as session:
        return store.open_jobs(session)


def run_rate(url: str, rate: float, seconds: float, slack: SlackStandIn, parts: Any, start: int) -> dict[str, Any]:
    import httpx
    from slack_sdk.signature import SignatureVerifier

    signer = SignatureVerifier(SIGNING_SECRET)
    total = int(rate * seconds)
    stamps = [f"1800000000.{start + i:06d}" for i in range(total)]
    acks: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    clients = threading.local()

    def send(i: int) -> None:
        event = {"type": "app_mention", "user": "U1", "text": "<@UBOT> a question", "ts": stamps[i]}
        event |= {"channel": "C1", "event_ts": stamps[i]}
        body = json.dumps({"type": "event_callback", "event_id": f"Ev{start + i}", "event": event})
        now = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": now,
            "X-Slack-Signature": signer.generate_signature(timestamp=now, body=body),
        }
        if not hasattr(clients, "http"):
            clients.http = httpx.Client(timeout=30)
        began = time.perf_counter()
        response = clients.http.post(url, content=body, headers=headers)
        with lock:
            acks.append((time.perf_counter() - began) * 1000)
            statuses[response.status_code] += 1

    depth: list[tuple[float, int]] = []
    began = time.monotonic()
    stop_sampling = threading.Event()

    def sample() -> None:
        while not stop_sampling.is_set():
            depth.append((time.monotonic() - began, open_jobs(parts)))
            stop_sampling.wait(1.0)

    threading.Thread(target=sample, daemon=True).start()
    with ThreadPoolExecutor(max_workers=64) as pool:
        for i in range(total):
            delay = began + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(send, i)
    sent_for = time.monotonic() - began
    deadline = time.monotonic() + max(120.0, seconds * 3)
    mine = set(stamps)
    while time.monotonic() < deadline:
        with slack.lock:
            answered = [t for t in slack.answers if t in mine]
        if len(set(answered)) >= total and open_jobs(parts) == 0:
            break
        time.sleep(0.2)
    finished = time.monotonic() - began
    time.sleep(1.0)  # a late second answer would show up now
    stop_sampling.set()
    with slack.lock:
        answered = [t for t in slack.answers if t in mine]
    counts = Counter(answered)
    return {
        "rate": rate,
        "sent": total,
        "http_200": statuses[200],
        "ack_p50_ms": statistics.median(acks),
        "ack_p99_ms": sorted(acks)[max(0, int(len(acks) * 0.99) - 1)],
        "sent_for_s": sent_for,
        "answers_per_s": len(counts) / finished,
        "drained_after_s": finished,
        "max_queue": max(d for _, d in depth) if depth else 0,
        "queue": depth,
        "lost": total - len(counts),
        "duplicated": sum(n - 1 for n in counts.values() if n > 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[5, 20, 50], help="events per second")
    parser.add_argument("--seconds", type=float, default=60, help="how long each rate is sent")
    parser.add_argument("--cost", type=float, default=0.1, help="seconds one answer costs")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("SLACK_WORKERS", "4")))
    parser.add_argument("--database", help="SQLAlchemy URL (default: a fresh SQLite file)")
    args = parser.parse_args()

    import logging

    logging.basicConfig(level=logging.ERROR)
    folder = Path(tempfile.mkdtemp(prefix="ragbot-slack-load-"))
    database = args.database or f"sqlite:///{folder / 'bench.db'}"
    slack = SlackStandIn()
    parts, (server, service), url = start_bot(database, args.workers, args.cost, slack, folder)
    print(f"ragbot serve (Slack HTTP path), {args.workers} workers, {args.cost * 1000:.0f} ms per answer, {database}")
    print(
        f"{'rate/s':>7} {'sent':>6} {'ack p50':>8} {'ack p99':>8} {'answers/s':>9} {'max queue':>9} "
        f"{'drained':>8} {'lost':>5} {'dup':>4}  queue depth every 10 s"
    )
    try:
        start = 0
        for rate in args.rates:
            r = run_rate(url, rate, args.seconds, slack, parts, start)
            start += r["sent"]
            every_10 = " ".join(str(d) for t, d in r["queue"] if int(t) % 10 == 0)
            print(
                f"{rate:>7g} {r['sent']:>6} {r['ack_p50_ms']:>6.1f}ms {r['ack_p99_ms']:>6.1f}ms "
                f"{r['answers_per_s']:>9.1f} {r['max_queue']:>9} {r['drained_after_s']:>7.1f}s {r['lost']:>5} "
                f"{r['duplicated']:>4}  {every_10}"
            )
    finally:
        server.should_exit = True
        service.close()
        parts.close()


if __name__ == "__main__":
    main()
