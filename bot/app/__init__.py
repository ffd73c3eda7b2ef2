"""The composition root: the only code that reads settings and builds objects, and the web app assembly."""

from bot.app.components import (
    Components,
    load_engine,
    load_reranker,
    make_answer_writer,
    open_components,
    rerank_batcher_factory,
)

__all__ = [
    "Components",
    "load_engine",
    "load_reranker",
    "make_answer_writer",
    "open_components",
    "rerank_batcher_factory",
]
