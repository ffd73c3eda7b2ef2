"""Checks shared by the in-process engines before they hand a model name to transformers / sentence-transformers:
clear reasons for the common mistakes, in the wording of the engine that asks (its `load_error`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from rerank.base import RerankerLoadError

LoadError = Callable[[str, str, BaseException | None], RerankerLoadError]


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
