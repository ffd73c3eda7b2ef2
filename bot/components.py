"""The one place that turns settings into components (database, index, embedder, reranker, answer writer)."""

from __future__ import annotations

import logging
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import store
from bot.answer import AnswerWriter, ExtractiveAnswerer, LLMAnswerer
from bot.pipeline import Pipeline, RerankerSlot
from bot.settings import Settings
from rerank import Reranker
from retrieval import Embedder, Index, Retriever, open_index
from retrieval.fusion import embedder_languages

log = logging.getLogger(__name__)


def load_reranker(settings: Settings) -> Reranker:
    """The configured reranker: a remote /v1/rerank server (RERANK_URL), else the in-process engine of
    RERANK_BACKEND. Raises `rerank.RerankerLoadError` with a clear message when a model cannot be loaded."""
    if settings.rerank_url:
        from rerank.http import HttpReranker

        return HttpReranker(
            settings.rerank_url,
            api_key=settings.rerank_api_key,
            timeout=settings.rerank_timeout,
            instruction_mode=settings.rerank_instruction_mode,
        )
    if settings.rerank_backend == "cross-encoder":
        from rerank.cross_encoder import CrossEncoderReranker

        return CrossEncoderReranker(settings.rerank_model, device=settings.rerank_device)
    from rerank import Qwen3Reranker

    return Qwen3Reranker(
        settings.rerank_model,
        device=settings.rerank_device,
        dtype=settings.rerank_dtype,
        max_length=settings.rerank_max_length,
        batch_tokens=settings.rerank_batch_tokens,
    )


def make_answer_writer(settings: Settings) -> AnswerWriter:
    if settings.llm_base_url:
        return LLMAnswerer(settings.llm_base_url, settings.llm_model, settings.llm_api_key, settings.llm_timeout)
    return ExtractiveAnswerer()


class Components:
    """Lazily built, shared parts of one ragbot process. Close it to release the embedded index."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def engine(self) -> Engine:
        engine = store.make_engine(self.settings.database_url)
        store.upgrade_database(engine)
        return engine

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return store.session_factory(self.engine)

    @cached_property
    def index(self) -> Index:
        s = self.settings
        return open_index(s.qdrant_url, s.qdrant_path, api_key=s.qdrant_api_key, timeout=s.qdrant_timeout)

    @cached_property
    def embedder(self) -> Embedder:
        return Embedder(self.settings.embed_model, device=self.settings.embed_device)

    @cached_property
    def pipeline(self) -> Pipeline:
        return Pipeline(
            sessions=self.sessions,
            retriever=Retriever(
                self.index,
                self.embedder,
                dense_languages=embedder_languages(self.embedder.name, self.settings.embed_languages),
            ),
            reranker=RerankerSlot(lambda: load_reranker(self.settings)),
            answer_writer=make_answer_writer(self.settings),
            default_collection=self.settings.ragbot_collection,
            require_rerank=self.settings.rerank_required,
        )

    def close(self) -> None:
        if "index" in self.__dict__:
            self.index.close()
        if "engine" in self.__dict__:
            self.engine.dispose()

    def __enter__(self) -> Components:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
