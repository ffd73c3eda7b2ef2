"""Hugging Face hub models without waits: a hub id is looked up in the local cache first and loaded from there
with no network call; only a model that is not cached is left to the hub, and only after one short check that
the hub answers at all. Without that check, transformers and huggingface_hub retry an unreachable hub for about
half a minute (with a warning per try) before they give up.

A leaf below the engines: `rerank` and `retrieval` both load models through it, and it imports neither."""

from __future__ import annotations

import os
import threading
from pathlib import Path

# One try, this long, to learn whether the hub answers before handing it a model that is not cached.
PROBE_TIMEOUT_S = 3.0


class ModelNotAvailable(RuntimeError):
    """A hub model is not in the local cache and cannot be fetched now. `reason` completes the sentence
    "Cannot load model M: ..." (where the cache is, and why the hub is no use); the caller adds its fix."""

    def __init__(self, model: str, reason: str) -> None:
        super().__init__(f"{model}: {reason}")
        self.model = model
        self.reason = reason


def looks_like_hub_id(model: str) -> bool:
    """`org/name` or `name`: something the Hugging Face hub could resolve, not a path."""
    parts = model.split("/")
    return (
        len(parts) in (1, 2)
        and all(parts)
        and not model.startswith((".", "~"))
        and not os.path.isabs(model)
        and "\\" not in model
    )


def has_checkpoint(folder: Path) -> bool:
    """A model folder that can be loaded without fetching anything: a config and weights."""
    if not (folder / "config.json").is_file():
        return False
    return any(any(folder.glob(pattern)) for pattern in ("*.safetensors", "*.bin", "*/*.safetensors", "*/*.bin"))


def cached_folder(model: str) -> Path | None:
    """The snapshot folder of hub id `model` in the local Hugging Face cache (HF_HOME / HF_HUB_CACHE) when it
    holds a loadable checkpoint, else None. Reads the disk only."""
    from huggingface_hub import snapshot_download

    candidates = [model] if "/" in model else [model, f"sentence-transformers/{model}"]
    for repo in candidates:
        try:
            folder = Path(snapshot_download(repo, local_files_only=True))
        except Exception:  # not cached (LocalEntryNotFoundError), or a name the hub would refuse
            continue
        if has_checkpoint(folder):
            return folder
    return None


def cache_dir() -> str:
    from huggingface_hub import constants

    return str(Path(constants.HF_HUB_CACHE).expanduser().resolve())


def hub_offline() -> bool:
    """HF_HUB_OFFLINE as huggingface_hub reads it."""
    import huggingface_hub
    from huggingface_hub import constants

    check = getattr(huggingface_hub, "is_offline_mode", None)
    return bool(check()) if callable(check) else bool(constants.HF_HUB_OFFLINE)


def hub_endpoint() -> str:
    """The hub this process would download from (HF_ENDPOINT, else huggingface.co)."""
    from huggingface_hub import constants

    return str(constants.ENDPOINT).rstrip("/")


def probe_hub(model: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None when the hub answers an HTTP request about `model` within `timeout` seconds (any status: the hub is
    there, and the library's own errors say the rest), else why not. One request, no retries; the wait is
    bounded even where name resolution hangs (the request runs in a thread that is left behind)."""
    from huggingface_hub.utils import get_session

    url = f"{hub_endpoint()}/api/models/{model}"
    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            get_session().head(url, timeout=timeout)
            outcome.append(None)
        except Exception as exc:
            text = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ""
            outcome.append(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)

    worker = threading.Thread(target=attempt, name="hub-probe", daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    if not outcome:
        return f"no answer in {timeout:g} s"
    return outcome[0]


def resolve(model: str, timeout: float = PROBE_TIMEOUT_S) -> str:
    """Where to load `model` from: a local folder as given; a hub id's cached snapshot folder (no network
    call at all); else the hub id itself once the hub has answered within `timeout` seconds, for the library
    to download. Raises `ModelNotAvailable` (one sentence) when it is not cached and the hub is offline
    (HF_HUB_OFFLINE) or cannot be reached."""
    if not looks_like_hub_id(model) or Path(model).expanduser().exists():
        return model
    folder = cached_folder(model)
    if folder is not None:
        return str(folder)
    where = f"it is not in the local Hugging Face cache ({cache_dir()})"
    if hub_offline():
        raise ModelNotAvailable(model, f"{where} and HF_HUB_OFFLINE is set")
    problem = probe_hub(model, timeout)
    if problem is not None:
        raise ModelNotAvailable(model, f"{where} and the hub ({hub_endpoint()}) could not be reached ({problem})")
    return model
