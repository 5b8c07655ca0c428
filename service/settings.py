"""Service configuration: one pydantic-settings model, read from MEMORY_* environment variables."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class LogFormat(StrEnum):
    json = "json"
    text = "text"


class Settings(BaseSettings):
    """Everything the service reads from its environment (prefix ``MEMORY_``)."""

    model_config = SettingsConfigDict(env_prefix="MEMORY_", env_file=".env", extra="ignore")

    # --- storage -------------------------------------------------------------------------
    data_dir: Path = Field(Path("./data"), description="Folder for the embedded SQLite file and Qdrant Edge shard.")
    database_url: str | None = Field(
        None, description="SQLAlchemy async URL; unset means SQLite at <data_dir>/memory.db."
    )
    database_pool_size: int = Field(10, ge=1, le=200)
    database_connect_timeout_seconds: float = Field(
        5.0, gt=0, le=120, description="Longest wait for a new database connection (then 503)."
    )
    redis_url: str | None = Field(None, description="Redis URL for the short-term buffer; unset means in-process.")
    qdrant_url: str | None = Field(None, description="Qdrant server URL; unset means embedded Qdrant Edge.")
    qdrant_api_key: SecretStr | None = None
    qdrant_collection: str = Field("memories", pattern=r"^[A-Za-z0-9_-]{1,64}$")

    # --- short-term buffer ---------------------------------------------------------------
    buffer_max_messages: int = Field(200, ge=1, le=100_000, description="Messages kept per session buffer.")
    buffer_ttl_seconds: int = Field(7 * 24 * 3600, ge=0, description="Idle buffer expiry; 0 keeps buffers forever.")
    buffer_max_tokens: int = Field(
        0, ge=0, description="Tokens kept per session buffer (newest first); 0 caps by messages only."
    )
    tokenizer_encoding: str = Field("o200k_base", description="bpe-openai encoding used to count tokens.")

    # --- digests: rolling summaries, condensation, extraction ------------------------------
    summary_max_tokens: int = Field(400, ge=16, le=8000, description="Longest rolling summary of a session.")
    condense_every_messages: int = Field(
        20, ge=0, le=1000, description="Condense a session's messages into a summary memory every N (0 = only on demand)."
    )
    condense_max_tokens: int = Field(160, ge=16, le=4000, description="Longest summary memory made by condensing.")
    extract_facts: bool = Field(True, description="Extract facts from user messages into semantic memories.")

    # --- request limits ------------------------------------------------------------------
    max_request_bytes: int = Field(2 * 1024 * 1024, ge=1024, description="Largest accepted request body.")
    max_content_chars: int = Field(32_000, ge=1, description="Longest message or memory content.")
    max_batch_items: int = Field(100, ge=1, description="Most messages or memories in one batch.")
    max_page_size: int = Field(200, ge=1, le=1000)
    max_document_chars: int = Field(2_000_000, ge=1, description="Longest knowledge document content.")

    # --- knowledge documents (RAG) -----------------------------------------------------------
    document_chunk_tokens: int = Field(256, ge=32, le=2048, description="Default chunk size of a document, in tokens.")
    document_overlap_tokens: int = Field(
        32, ge=0, le=2047, description="Default overlap of consecutive chunks, in tokens (less than the chunk size)."
    )

    # --- embeddings and recall -------------------------------------------------------------
    embedding_model: str | None = Field(
        None, description="sentence-transformers model name or path; unset uses the packaged all-MiniLM-L6-v2."
    )
    embedding_backend: Literal["auto", "torch", "onnx", "onnx-int8", "openvino"] = Field(
        "auto",
        description="Runtime of the embedding model: torch (sentence-transformers), onnx (ONNX Runtime, exported "
        "locally from the model's weights), onnx-int8 (that export with dynamic int8 quantization) or openvino (the "
        "export on OpenVINO, in bfloat16 where the CPU has bf16 units); auto is the first of openvino, onnx and "
        "torch that loads.",
    )
    embedding_cache_dir: Path | None = Field(
        None, description="Folder for the ONNX exports of the embedding model; unset means <data_dir>/models."
    )
    embedding_batch_size: int = Field(64, ge=1, le=1024)
    embedding_threads: int | None = Field(None, ge=1, le=256, description="Threads of the embedding model (torch, ONNX Runtime or OpenVINO): the query lane's, and the indexing lane's in all; unset uses every CPU.")
    embedding_queue_size: int = Field(1024, ge=1)
    embedding_index_streams: int | None = Field(
        None, ge=1, le=64,
        description="Model instances of the indexing lane, each on its own thread with an equal share of "
        "MEMORY_EMBEDDING_THREADS (at least one), on ONNX Runtime and OpenVINO; unset: one a CPU, at most 4 (each "
        "holds a copy of the model, about 140 MB). On torch it is one.",
    )
    embedding_query_threads: int = Field(
        1, ge=1, le=256,
        description="Threads of the query lane's model on ONNX Runtime and OpenVINO: a query is encoded as fast on "
        "one as on two, for half the CPU. On torch the lanes share MEMORY_EMBEDDING_THREADS.",
    )
    background_nice: int = Field(
        10, ge=0, le=19,
        description="How many steps (Linux nice) below the rest of the process the CPU priority of the threads that "
        "embed for indexing is, so that searches and other requests go first when they compete for the CPUs; 0 keeps "
        "it equal. Alone, background work runs at full speed.",
    )
    indexing_lag_warn_seconds: float = Field(
        60.0, gt=0, description="Oldest pending job age beyond which /readyz reports indexing as behind."
    )
    embedding_query_lane: bool = Field(
        True, description="A second model instance for search queries, so they never wait behind indexing batches."
    )
    dedup_similarity: float = Field(0.95, ge=0.0, le=1.0, description="Cosine above which a memory is a duplicate.")

    # --- background work -------------------------------------------------------------------
    run_workers: bool = Field(True, description="Run background jobs inside `serve` (off when a worker runs them).")
    worker_poll_seconds: float = Field(0.5, gt=0)
    worker_batch_size: int = Field(64, ge=1)
    worker_loops: int = Field(1, ge=1, le=64, description="Background claim loops that take any job, oldest first.")
    worker_index_loops: int = Field(
        2, ge=0, le=64, description="Background claim loops that take only indexing jobs (one embeds while another reads and writes SQL)."
    )
    job_max_attempts: int = Field(10, ge=1)
    purge_interval_seconds: float = Field(60.0, gt=0)
    worker_metrics_port: int = Field(9101, ge=0, le=65535, description="`memory-service worker` serves /metrics here.")

    # --- optional LLM ------------------------------------------------------------------------
    llm_base_url: str | None = Field(None, description="OpenAI-compatible endpoint; unset means no LLM.")
    llm_api_key: SecretStr | None = None
    llm_model: str = "gpt-4o-mini"
    llm_timeout_seconds: float = Field(
        10.0, gt=0, le=300, description="Deadline for one LLM call; past it the no-LLM path answers."
    )

    # --- governance ------------------------------------------------------------------------------
    message_retention_days: int = Field(0, ge=0, le=36500, description="Purge messages older than this; 0 keeps them.")
    memory_retention_days: int = Field(0, ge=0, le=36500, description="Purge memories older than this; 0 keeps them.")
    max_import_bytes: int = Field(
        256 * 1024 * 1024, ge=1024, description="Largest body of POST /v1/users/{id}/import (an export stream)."
    )

    # --- security ----------------------------------------------------------------------------
    auth_disabled: bool = Field(
        False, description="Serve without API keys: every caller is an admin of MEMORY_DEFAULT_TENANT."
    )
    admin_key: SecretStr | None = Field(
        None, description="Installs this secret (16+ characters) as an admin key of MEMORY_DEFAULT_TENANT at start."
    )
    rate_limit_per_minute: int = Field(0, ge=0, description="Requests a minute per API key; 0 = no limit.")
    idempotency_ttl_seconds: int = Field(
        24 * 3600, ge=60, description="How long the first answer to an Idempotency-Key is kept."
    )

    # --- observability -----------------------------------------------------------------------
    gc_gen0_threshold: int = Field(
        0,
        ge=0,
        le=10_000_000,
        description="Allocations between collections of Python's youngest GC generation while serving (0: Python's own, 700).",
    )
    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$")
    log_format: LogFormat = LogFormat.json
    default_tenant: str = Field("default", pattern=r"^[A-Za-z0-9_.-]{1,64}$")

    @property
    def max_document_request_bytes(self) -> int:
        """The body limit of POST /v1/documents: the longest content at the worst JSON escaping
        (6 bytes a character, ``\\uXXXX``) plus room for the rest of the body."""
        return max(self.max_request_bytes, self.max_document_chars * 6 + 1024 * 1024)

    @model_validator(mode="after")
    def _no_default_secrets(self) -> Settings:
        if self.document_overlap_tokens >= self.document_chunk_tokens:
            raise ValueError("MEMORY_DOCUMENT_OVERLAP_TOKENS must be less than MEMORY_DOCUMENT_CHUNK_TOKENS")
        if self.admin_key is not None and len(self.admin_key.get_secret_value()) < 16:
            raise ValueError("MEMORY_ADMIN_KEY must be at least 16 characters")
        for name in ("qdrant_api_key", "llm_api_key", "admin_key"):
            secret = getattr(self, name)
            if secret is not None and secret.get_secret_value() in {"changeme", "secret", "default"}:
                raise ValueError(f"MEMORY_{name.upper()} must not be a placeholder value")
        return self

    @property
    def sql_url(self) -> str:
        """The database URL in force: the configured one or the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'memory.db').as_posix()}"

    @property
    def edge_path(self) -> Path:
        return self.data_dir / "qdrant-edge"
