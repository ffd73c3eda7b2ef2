"""The composition root: the only code that turns settings into objects (database, index, embedder, reranker,
answer writer, the answer service). Everything is built lazily, once, and `close()` releases what was built."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import store
from bot.answering import (
    AnswerService,
    AnswerWriter,
    ExtractiveAnswerer,
    LLMAnswerer,
    Presets,
    RankingRecorder,
    RerankerSlot,
)
from bot.answering.relevance import RelevanceFloors, RelevanceGate
from bot.settings import Settings
from rerank import DynamicBatcher, Reranker, RerankerLoadError
from retrieval import Embedder, Index, Retriever, load_embedders, open_index
from retrieval.embedders import missing_cuda
from retrieval.errors import IndexUnavailableError
from retrieval.fusion import embedder_languages

log = logging.getLogger(__name__)


def load_engine(settings: Settings) -> Reranker:
    """The in-process reranking engine of RERANK_BACKEND (Qwen3-Reranker or a cross-encoder). Raises
    `rerank.RerankerLoadError` with a clear message when the model cannot be loaded."""
    problem = missing_cuda("RERANK_DEVICE", settings.rerank_device)
    if problem:  # one sentence naming the setting: a skipped rerank's status keeps only the first
        raise RerankerLoadError(problem + ".")
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


def load_reranker(settings: Settings) -> Reranker:
    """The reranker the bot uses: a remote /v1/rerank server (RERANK_URL), else the in-process engine."""
    if settings.rerank_url:
        from rerank.http import HttpReranker

        return HttpReranker(
            settings.rerank_url,
            api_key=settings.rerank_api_key,
            timeout=settings.rerank_timeout,
            instruction_mode=settings.rerank_instruction_mode,
        )
    return load_engine(settings)


# How many forward passes' worth of tokens may wait in the rerank server's queue (a request alone is always taken).
QUEUED_BATCHES = 64


def rerank_batcher_factory(settings: Settings) -> Callable[[], DynamicBatcher]:
    """What `ragbot rerank-server` serves: the configured engine behind a dynamic batcher (loaded on call)."""

    def factory() -> DynamicBatcher:
        return DynamicBatcher(
            load_engine(settings),
            max_wait_ms=settings.rerank_batch_wait_ms,
            max_queue=settings.rerank_queue_size,
            # Waiting requests hold their token ids: bounded in tokens too, not only in requests.
            max_queue_tokens=QUEUED_BATCHES * settings.rerank_batch_tokens,
        )

    return factory


def embedded_store_folder(qdrant_path: str) -> Path:
    """QDRANT_PATH as an absolute folder (messages say which folder a relative path meant), created now: a
    folder that cannot be created or written is one clear line at start, not a failure at the first write."""
    folder = Path(qdrant_path).expanduser().resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise IndexUnavailableError(
            f"QDRANT_PATH={folder} cannot be created ({reason}): set QDRANT_PATH to a folder ragbot may create "
            "and write, or QDRANT_URL to a Qdrant server."
        ) from exc
    if not os.access(folder, os.R_OK | os.W_OK | os.X_OK):
        raise IndexUnavailableError(
            f"QDRANT_PATH={folder} is not writable by this user: set QDRANT_PATH to a folder ragbot may write, "
            "or QDRANT_URL to a Qdrant server."
        )
    return folder


def make_answer_writer(settings: Settings) -> AnswerWriter:
    if settings.llm_base_url:
        return LLMAnswerer(settings.llm_base_url, settings.llm_model, settings.llm_api_key, settings.llm_timeout)
    return ExtractiveAnswerer()


class Components:
    """The shared parts of one ragbot process, built from `settings` on first use.

    Keyword arguments provide parts instead of building them (tests reuse a loaded embedder, or share one
    embedded index between two bot "processes"): `Components(settings, embedder=model)`. A provided part
    belongs to the caller, so `close()` leaves it open."""

    PARTS = ("engine", "sessions", "index", "embedders", "embedder", "retriever", "reranker", "answers")

    def __init__(self, settings: Settings, **provided: Any) -> None:
        unknown = set(provided) - set(self.PARTS)
        if unknown:
            raise TypeError(f"Unknown component(s) {', '.join(sorted(unknown))}; known: {', '.join(self.PARTS)}")
        self.settings = settings
        self.__dict__.update(provided)  # cached_property reads the instance dict first
        self._provided = frozenset(provided)

    def _built(self, name: str) -> bool:
        return name in self.__dict__ and name not in self._provided

    def require_data(self) -> None:
        """For commands that only read (`ask`): the embedded store must already exist. QDRANT_PATH and the default
        DATABASE_URL are relative to the folder ragbot runs in, so an `ask` from another folder would otherwise
        create an empty store and database there and report an empty collection; say where it looked instead (an
        absolute QDRANT_PATH that does not exist yet gets the usual checks and "empty collection")."""
        s = self.settings
        path = Path(s.qdrant_path).expanduser()
        if s.qdrant_url or path.is_absolute():  # an absolute path is the same from everywhere
            return
        folder = path.resolve()
        existing = next(p for p in (folder, *folder.parents) if p.exists())
        if existing != folder and existing.is_dir():  # missing, but could be made: not a QDRANT_PATH mistake
            raise IndexUnavailableError(
                f"No ragbot data at QDRANT_PATH={folder} (QDRANT_PATH={s.qdrant_path} is relative to the folder "
                "ragbot runs in): run ragbot from the folder where you ran `ragbot ingest`, or set QDRANT_PATH and "
                "DATABASE_URL to absolute paths."
            )

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
        path = "" if s.qdrant_url else str(embedded_store_folder(s.qdrant_path))
        return open_index(s.qdrant_url, path, api_key=s.qdrant_api_key, timeout=s.qdrant_timeout)

    @cached_property
    def embedders(self) -> list[Embedder]:
        """The configured embedders, the primary one first; a provided `embedder` is reused where it is the
        model configured (tests load it once per session)."""
        s = self.settings
        provided = [self.__dict__["embedder"]] if "embedder" in self._provided else []
        return load_embedders(
            s.embed_model,
            s.embed_backend,
            device=s.embed_device,
            url=s.embed_url,
            api_key=s.embed_api_key,
            timeout=s.embed_timeout,
            loaded=provided,
            runtime=s.embed_runtime,
        )

    @cached_property
    def embedder(self) -> Embedder:
        """The primary embedder: its vector is the collection's `dense`, its languages EMBED_LANGUAGES."""
        return self.embedders[0]

    @cached_property
    def retriever(self) -> Retriever:
        languages = embedder_languages(self.embedder.name, self.settings.embed_languages)
        return Retriever(self.index, self.embedders, dense_languages=languages)

    @cached_property
    def reranker(self) -> RerankerSlot:
        return RerankerSlot(lambda: load_reranker(self.settings))

    @cached_property
    def answers(self) -> AnswerService:
        return AnswerService(
            presets=Presets(self.sessions, self.settings.ragbot_collection),
            retriever=self.retriever,
            reranker=self.reranker,
            answer_writer=make_answer_writer(self.settings),
            recorder=RankingRecorder(self.sessions, Path(self.settings.ranking_spool_dir)),
            require_rerank=self.settings.rerank_required,
            relevance=RelevanceGate(
                RelevanceFloors(self.settings.relevance_min_similarity, self.settings.relevance_min_term_match),
                self.retriever.dense_languages,
                self.retriever.lexical,
            ),
        )

    def close(self) -> None:
        """Release what this object built: the answer service's thread, the reranker's connections, the
        embedded index (one process at a time may hold it), the database pool."""
        if self._built("answers"):
            self.answers.close()
        if self._built("reranker"):
            self.reranker.close()
        if self._built("index"):
            self.index.close()
        if self._built("engine"):
            self.engine.dispose()

    def __enter__(self) -> Components:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_components(**overrides: Any) -> Components:
    """The process's components from the environment (and `.env`); `overrides` replace settings by field name
    (the command line's options, e.g. `rerank_model=`)."""
    from bot.app.logs import configure_logging
    from bot.settings import get_settings

    settings = get_settings()
    if overrides:
        settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_format)
    return Components(settings)
