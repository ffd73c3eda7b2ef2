"""Peak memory of `ragbot serve` and `ragbot rerank-server` under streams of oversized unauthenticated requests,
for this checkout ("after") and an earlier commit ("before", default: the last commit before issue 13).

Each tree runs as real processes (the `ragbot` command from that tree) on 127.0.0.1 with its own SQLite database
and embedded index, the bundled embedder, a tiny random-weight Qwen3 reranker and a local stand-in for Slack's
Web API. Per scenario the process's peak resident memory is reset (`/proc/PID/clear_refs`), the requests are
sent, and the bench prints the peak (VmHWM) and what stays resident afterwards, both as growth over the idle
process, and what the server answered:

- slack-body: 4 unsigned POST /slack/events bodies of `--slack-mb` MB at once, with Content-Length declared;
- slack-chunked: the same as one chunked body (no Content-Length);
- sign-in: `--logins` POST /admin/login with a 1 MB user name each;
- rerank-doc: POST /v1/rerank with one `--rerank-mb` MB document and no credentials;
- rerank-doc-keyed: the same with the server's API key (after only; before, the server has no key).

    python bench/abuse_memory.py                      # before (the default ref) and after
    python bench/abuse_memory.py --before none        # this checkout only
    python bench/abuse_memory.py --slack-mb 100 --rerank-mb 10 --logins 100 --json rows.json
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from slack_load import SlackStandIn  # noqa: E402

BEFORE_REF = "6b2f5be"  # main before issue 13 (bounded input, sign-in that holds, rerank auth)
RERANK_KEY = "bench-rerank-key-0123456789abcdef"
MB = 1024 * 1024
EARLY = " (before the whole body was sent)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kib(pid: int, field: str) -> int:
    """A memory figure of /proc/PID/status (VmRSS, VmHWM) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak(pid: int) -> None:
    """Start VmHWM over from the current RSS (Linux: writing 5 to clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def wait_http(url: str, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except Exception:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f} s")


def send_raw(port: int, path: str, headers: dict[str, str], chunks: Iterator[bytes], chunked: bool) -> str:
    """POST `chunks` over a plain socket (so the server may stop reading at any point); returns the status line
    the server answered, or what happened to the connection."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    if chunked:
        head += "Transfer-Encoding: chunked\r\n"
    replies: list[str] = []

    def read_reply() -> None:
        # Read while the body is still going out: a server that answers early and closes with unread data left
        # resets the connection, and a reply read only after sending could be lost to that reset.
        try:
            replies.append(sock.recv(4096).decode("latin-1").split("\r\n", 1)[0] or "closed without a reply")
        except OSError as exc:
            replies.append(f"connection {type(exc).__name__}")

    reader = threading.Thread(target=read_reply, daemon=True)
    sock.sendall((head + "\r\n").encode())
    reader.start()
    sent_all = True
    try:
        for chunk in chunks:
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
        if chunked:
            sock.sendall(b"0\r\n\r\n")
    except OSError:
        sent_all = False  # the server answered and closed before the body was through
    reader.join(120)
    sock.close()
    reply = replies[0] if replies else "no reply within 120 s"
    return reply + ("" if sent_all else EARLY)


def repeated(total: int, piece: bytes = b"a" * MB) -> Iterator[bytes]:
    left = total
    while left > 0:
        yield piece[: min(left, len(piece))]
        left -= len(piece)


@dataclasses.dataclass
class Row:
    tree: str
    process: str
    scenario: str
    idle_mib: float
    peak_growth_mib: float
    kept_mib: float
    seconds: float
    answers: str


def measure(tree: str, process: str, scenario: str, pid: int, run: Callable[[], list[str]]) -> Row:
    time.sleep(1.0)
    idle = kib(pid, "VmRSS")
    reset_peak(pid)
    started = time.perf_counter()
    answers = run()
    seconds = time.perf_counter() - started
    time.sleep(1.0)
    peak, now = kib(pid, "VmHWM"), kib(pid, "VmRSS")
    counted: dict[str, list[int]] = {}  # reply -> [how many, how many of those before the body was through]
    for answer in answers:
        reply = answer.removesuffix(EARLY)
        tally = counted.setdefault(reply, [0, 0])
        tally[0] += 1
        tally[1] += answer.endswith(EARLY)
    summary = "; ".join(
        f"{n}x {reply}" + (f" ({early} of them {EARLY.strip(' ()')})" if early else "")
        for reply, (n, early) in counted.items()
    )
    return Row(tree, process, scenario, idle / 1024, (peak - idle) / 1024, (now - idle) / 1024, seconds, summary)


def in_parallel(count: int, call: Callable[[], str]) -> list[str]:
    results: list[str] = []
    lock = threading.Lock()

    def one() -> None:
        answer = call()
        with lock:
            results.append(answer)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def ragbot(tree: Path, args: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    """The `ragbot` command of `tree` (its packages first on the path, whichever checkout is installed)."""
    code = "import sys; from bot.cli import main; sys.argv[0] = 'ragbot'; main()"
    env = {**env, "PYTHONPATH": str(tree)}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
    )


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def base_env(folder: Path, checkpoint: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "RERANK_", "QDRANT_", "LLM_"))}
    env.update(
        HF_HUB_OFFLINE="1",
        DATABASE_URL=f"sqlite:///{folder / 'ragbot.db'}",
        QDRANT_PATH=str(folder / "qdrant"),
        RANKING_SPOOL_DIR=str(folder / "spool"),
        RERANK_MODEL=str(checkpoint),
        RERANK_DEVICE="cpu",
        ADMIN_SECRET_KEY="bench-admin-secret-key-0123456789abcdef",
    )
    return env


def login_form(port: int) -> tuple[str, str]:
    """The session cookie and CSRF token a browser gets with the sign-in page."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login", timeout=10) as response:
        cookie = response.headers["set-cookie"].split(";", 1)[0]
        page = response.read().decode()
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return cookie, token


def bench_serve(tree_name: str, tree: Path, folder: Path, checkpoint: Path, args: argparse.Namespace) -> list[Row]:
    slack = SlackStandIn()
    port = free_port()
    env = base_env(folder, checkpoint) | {
        "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_SIGNING_SECRET": "bench-signing-secret",
        "SLACK_API_URL": slack.url,
    }
    proc = ragbot(tree, ["serve", "--port", str(port)], env, folder, folder / "serve.log")
    rows = []
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", 300, proc)
        slack_headers = {"Content-Type": "application/json", "Content-Length": str(args.slack_mb * MB)}

        def slack_body() -> list[str]:
            send = lambda: send_raw(port, "/slack/events", slack_headers, repeated(args.slack_mb * MB), False)  # noqa: E731
            return in_parallel(4, send)

        def slack_chunked() -> list[str]:
            headers = {"Content-Type": "application/json"}
            return [send_raw(port, "/slack/events", headers, repeated(args.slack_mb * MB), True)]

        def sign_in() -> list[str]:
            cookie, token = login_form(port)
            answers = []
            for n in range(args.logins):
                name = b"%07d" % n + b"n" * (1_000_000 - 7)  # a new 1 MB name each time, under 1 MiB
                body = b"name=" + name + b"&password=wrong-password&csrf_token=" + token.encode()
                headers = {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Content-Length": str(len(body)),
                    "Cookie": cookie,
                }
                answers.append(send_raw(port, "/admin/login", headers, iter([body]), False))
            return answers

        for scenario, run in (("slack-body", slack_body), ("slack-chunked", slack_chunked), ("sign-in", sign_in)):
            rows.append(measure(tree_name, "serve", scenario, proc.pid, run))
            print(f"  {tree_name} serve {scenario}: done", file=sys.stderr, flush=True)
    finally:
        stop(proc)
        slack.server.shutdown()
    return rows


def bench_rerank(tree_name: str, tree: Path, folder: Path, checkpoint: Path, args: argparse.Namespace) -> list[Row]:
    port = free_port()
    env = base_env(folder, checkpoint) | {"RERANK_SERVER_API_KEY": RERANK_KEY}
    proc = ragbot(tree, ["rerank-server", "--port", str(port)], env, folder, folder / "rerank.log")
    rows = []
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", 300, proc)
        document = "word " * (args.rerank_mb * MB // 5)
        body = json.dumps({"query": "what is it?", "documents": [document]}).encode()
        del document

        def rerank(key: str | None) -> Callable[[], list[str]]:
            headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
            if key:
                headers["Authorization"] = f"Bearer {key}"
            return lambda: [send_raw(port, "/v1/rerank", headers, iter([body]), False)]

        rows.append(measure(tree_name, "rerank-server", "rerank-doc", proc.pid, rerank(None)))
        print(f"  {tree_name} rerank-server rerank-doc: done", file=sys.stderr, flush=True)
        if tree_name == "after":
            rows.append(measure(tree_name, "rerank-server", "rerank-doc-keyed", proc.pid, rerank(RERANK_KEY)))
    finally:
        stop(proc)
    return rows


@contextlib.contextmanager
def tree_at(ref: str) -> Iterator[Path]:
    """The files of commit `ref`, unpacked into a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="ragbot-before-"))
    try:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def print_table(rows: list[Row]) -> None:
    print(
        f"{'tree':<7} {'process':<14} {'scenario':<17} {'idle MiB':>9} {'peak +MiB':>10} {'kept +MiB':>10} "
        f"{'s':>6}  answers"
    )
    for r in rows:
        print(
            f"{r.tree:<7} {r.process:<14} {r.scenario:<17} {r.idle_mib:>9.0f} {r.peak_growth_mib:>10.1f} "
            f"{r.kept_mib:>10.1f} {r.seconds:>6.1f}  {r.answers}"
        )
    before = {(r.process, r.scenario): r for r in rows if r.tree == "before"}
    ratios = [
        (r.process, r.scenario, before[(r.process, r.scenario)].peak_growth_mib, r.peak_growth_mib)
        for r in rows
        if r.tree == "after" and (r.process, r.scenario) in before
    ]
    if ratios:
        print("\npeak growth over idle, before / after (same machine, same run; the ratio floors 'after' at 1 MiB):")
        for process, scenario, old, new in ratios:
            print(f"  {process:<14} {scenario:<17} {old:8.1f} MiB / {new:6.1f} MiB = {old / max(new, 1.0):6.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE_REF, help="git ref to compare with, or 'none'")
    parser.add_argument("--slack-mb", type=int, default=200, help="size of each oversized Slack body")
    parser.add_argument("--rerank-mb", type=int, default=20, help="size of the oversized rerank document")
    parser.add_argument("--logins", type=int, default=200, help="sign-in requests with a 1 MB name")
    parser.add_argument("--json", type=Path, help="also write the rows to this file as JSON")
    args = parser.parse_args()

    from rerank.random_checkpoint import build_random_checkpoint

    work = Path(tempfile.mkdtemp(prefix="ragbot-abuse-"))
    rows: list[Row] = []
    try:
        checkpoint = build_random_checkpoint(work / "qwen3-tiny", size="tiny", seed=0)
        trees: list[tuple[str, contextlib.AbstractContextManager[Path]]] = []
        if args.before != "none":
            trees.append(("before", tree_at(args.before)))
        trees.append(("after", contextlib.nullcontext(REPO)))
        for name, opened in trees:
            with opened as tree:
                for bench in (bench_serve, bench_rerank):
                    folder = work / f"{name}-{bench.__name__}"
                    folder.mkdir()
                    rows.extend(bench(name, tree, folder, checkpoint, args))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps([dataclasses.asdict(row) for row in rows], indent=1) + "\n")


if __name__ == "__main__":
    main()
