"""Hub ids without waits, through real processes: a child process with HF_HUB_OFFLINE unset, its own empty
Hugging Face cache, and HF_ENDPOINT pointing at a local "hub" that accepts connections and never answers (or at a
closed port). A model that is not cached fails within seconds with one line; a model in the cache loads without
a single connection to the hub."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelhub import PROBE_TIMEOUT_S

ROOT = Path(__file__).resolve().parents[2]

# Loads one model in a fresh interpreter and reports, as one JSON line, how long the load took and how it ended.
CHILD = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
import huggingface_hub  # imported before the clock starts: the load is timed, not the imports
kind, model = sys.argv[1], sys.argv[2]
if kind == "qwen3":
    from rerank import Qwen3Reranker as Load, RerankerLoadError as Failure
    make = lambda: Load(model, device="cpu")
elif kind == "cross-encoder":
    from rerank.cross_encoder import CrossEncoderReranker as Load
    from rerank import RerankerLoadError as Failure
    make = lambda: Load(model, device="cpu")
else:
    from retrieval import SentenceTransformerEmbedder as Load
    from retrieval.errors import EmbedderLoadError as Failure
    make = lambda: Load(model, device="cpu")
started = time.perf_counter()
try:
    loaded = make()
    outcome = {"loaded": True, "scores": loaded.score("q", ["d"]) if kind != "embedder" else None}
except Failure as exc:
    outcome = {"loaded": False, "error": str(exc)}
outcome["seconds"] = time.perf_counter() - started
print("RESULT " + json.dumps(outcome))
"""


class SilentHub:
    """A TCP server on 127.0.0.1 that accepts every connection and never answers: a hub behind a black hole.
    Counts the connections made to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            self._held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self._held:
            conn.close()


@pytest.fixture
def silent_hub() -> Iterator[SilentHub]:
    hub = SilentHub()
    yield hub
    hub.close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"  # nothing listens once it is closed


def child_env(hf_home: Path, endpoint: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE")
        and not k.startswith(("RERANK_", "EMBED_"))
    }
    env.update(HF_HOME=str(hf_home), HF_ENDPOINT=endpoint, TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(ROOT))
    return env


def load_in_child(kind: str, model: str, env: dict[str, str]) -> tuple[dict, str]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, kind, model],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT ")), done.stderr


def place_in_cache(hf_home: Path, repo: str, checkpoint: Path) -> Path:
    """`checkpoint` laid out as huggingface_hub caches a download of `repo`: models--org--name/snapshots/<rev>/
    with refs/main naming the revision."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = hf_home / "hub" / ("models--" + repo.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / revision
    shutil.copytree(checkpoint, snapshot)
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(revision, encoding="utf-8")
    return snapshot


def test_a_model_not_cached_fails_in_seconds_with_one_line_when_the_hub_never_answers(
    tmp_path: Path, silent_hub: SilentHub
) -> None:
    model = "Qwen/Qwen3-Reranker-0.6B"
    outcome, stderr = load_in_child("qwen3", model, child_env(tmp_path / "hf", silent_hub.url))
    assert not outcome["loaded"]
    assert outcome["seconds"] < PROBE_TIMEOUT_S + 4, outcome  # the libraries retried for ~25 s
    message = outcome["error"]
    assert "\n" not in message and len(message) < 600, message
    assert model in message
    assert f"not in the local Hugging Face cache ({(tmp_path / 'hf' / 'hub').resolve()})" in message
    assert f"the hub ({silent_hub.url}) could not be reached" in message
    assert f"hf download {model}" in message and "RERANK_URL" in message
    assert silent_hub.connections == 1, "one probe, no retries"
    assert "Retry" not in stderr and len(stderr.splitlines()) <= 2, stderr


def test_a_closed_hub_port_fails_the_embedder_at_once(tmp_path: Path) -> None:
    model = "BAAI/bge-m3"
    outcome, stderr = load_in_child("embedder", model, child_env(tmp_path / "hf", closed_port_url()))
    assert not outcome["loaded"]
    assert outcome["seconds"] < PROBE_TIMEOUT_S + 4, outcome  # a refused connection is not retried either
    message = outcome["error"]
    assert "\n" not in message and model in message
    assert "not in the local Hugging Face cache" in message and "could not be reached" in message
    assert "EMBED_MODEL" in message
    assert "Retry" not in stderr, stderr


def test_hf_hub_offline_means_no_connection_at_all(tmp_path: Path, silent_hub: SilentHub) -> None:
    env = child_env(tmp_path / "hf", silent_hub.url) | {"HF_HUB_OFFLINE": "1"}
    outcome, _ = load_in_child("cross-encoder", "BAAI/bge-reranker-v2-m3", env)
    assert not outcome["loaded"]
    assert "HF_HUB_OFFLINE is set" in outcome["error"]
    assert silent_hub.connections == 0


def test_a_cached_model_loads_with_no_connection_to_the_hub(
    tmp_path: Path, silent_hub: SilentHub, tiny_checkpoint: Path
) -> None:
    repo = "tiny-org/qwen3-reranker-tiny"
    place_in_cache(tmp_path / "hf", repo, tiny_checkpoint)
    outcome, _ = load_in_child("qwen3", repo, child_env(tmp_path / "hf", silent_hub.url))
    assert outcome["loaded"], outcome
    assert len(outcome["scores"]) == 1 and 0.0 <= outcome["scores"][0] <= 1.0
    assert silent_hub.connections == 0, "a cached model needs no network call"


def test_a_cached_snapshot_without_weights_is_not_taken_for_a_model(
    tmp_path: Path, silent_hub: SilentHub, tiny_checkpoint: Path
) -> None:
    repo = "tiny-org/half-downloaded"
    snapshot = place_in_cache(tmp_path / "hf", repo, tiny_checkpoint)
    for weights in snapshot.glob("*.safetensors"):
        weights.unlink()
    outcome, _ = load_in_child("qwen3", repo, child_env(tmp_path / "hf", silent_hub.url))
    assert not outcome["loaded"]
    assert "not in the local Hugging Face cache" in outcome["error"] and "could not be reached" in outcome["error"]
    assert silent_hub.connections == 1
