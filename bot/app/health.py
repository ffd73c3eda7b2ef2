"""Readiness: can this process answer now? The database, the index and the reranker are each checked; a
check that fails names what is wrong, so `/readyz` says it, and a load balancer sends Slack elsewhere."""

from __future__ import annotations

from sqlalchemy import text

from bot.app.components import Components
from retrieval.errors import first_line

READY = "ok"


def readiness(parts: Components) -> dict[str, str]:
    """`{"database": "ok", "index": "...", "reranker": "..."}`: "ok", or what is wrong."""
    return {"database": _database(parts), "index": _index(parts), "reranker": _reranker(parts)}


def admin_readiness(parts: Components) -> dict[str, str]:
    """`{"database": "ok"}` or what is wrong: the admin app needs only the database to serve its pages (models
    load when the playground first needs them)."""
    return {"database": _database(parts)}


def _database(parts: Components) -> str:
    try:
        with parts.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        return f"unreachable: {_line(exc)}"
    return READY


def _index(parts: Components) -> str:
    collection = parts.settings.ragbot_collection
    try:
        info = parts.index.collection_info(collection)
    except Exception as exc:
        return f"unreachable: {_line(exc)}"
    if info is None or info.points == 0:
        return f"collection {collection!r} is empty or missing: ragbot ingest DOCS --collection {collection}"
    return READY


def _reranker(parts: Components) -> str:
    status = parts.answers.reranker_status()
    return READY if status.available else f"unavailable: {status.error}"


def _line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {first_line(exc, 200)}"
