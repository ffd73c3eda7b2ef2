"""What may name a collection: one rule for the setting (RAGBOT_COLLECTION), the command line (`--collection`)
and both index backends, checked when a command starts rather than at the first search."""

from __future__ import annotations

import re

_COLLECTION_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}")


def check_collection_name(name: str) -> str:
    """`name` if it can name a collection (a folder of the embedded store, a Qdrant server collection), else a
    ValueError saying what a name may hold."""
    if not _COLLECTION_NAME.fullmatch(name):
        raise ValueError("not a collection name: use 1 to 255 letters, digits, '-', '_' and '.' (not first), e.g. kb")
    return name
