"""Checks shared by the in-process engines before they hand a model name to transformers / sentence-transformers:
clear reasons for the common mistakes, in the wording of the engine that asks (its `load_error`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from modelhub import ModelNotAvailable, looks_like_hub_id, resolve
from rerank.base import RerankerLoadError

__all__ = ["LoadError", "check_local_folder", "locate", "looks_like_hub_id", "short_error"]

LoadError = Callable[[str, str, BaseException | None], RerankerLoadError]


def short_error(exc: BaseException, limit: int = 160) -> str:
    """`Type: first line` of an exception, cut to `limit` characters."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def check_local_folder(model: str, load_error: LoadError) -> None:
    """A folder must hold a config and weights; a path that is neither a folder nor a hub id is an error."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise load_error(
                model, "the folder has no config.json (not a Hugging Face model folder)", FileNotFoundError(path)
            )
        if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
            raise load_error(model, "the folder has no model weights (*.safetensors)", FileNotFoundError(path))
        return
    if path.exists():
        raise load_error(model, "it is a file, not a model folder", NotADirectoryError(path))
    if not looks_like_hub_id(model):
        raise load_error(model, "no such folder", FileNotFoundError(path))


def locate(model: str, load_error: LoadError) -> str:
    """Where to load `model` from: a checked local folder, a hub id's folder in the local Hugging Face cache (no
    network call), or the hub id once the hub has answered (`modelhub.resolve`). Not cached and no hub is one
    `load_error`, within seconds, instead of the libraries' half-minute of retries."""
    check_local_folder(model, load_error)
    try:
        return resolve(model)
    except ModelNotAvailable as exc:
        raise load_error(model, exc.reason, exc) from exc
