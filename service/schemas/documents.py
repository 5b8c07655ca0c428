"""Knowledge documents (the RAG knowledge base) and their chunks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from service.digest.chunking import MIN_CHUNK_TOKENS
from service.schemas.common import ClientId, Metadata, RecordModel, RequestModel
from service.schemas.validators import MetadataIn, NonBlank, SafeStr

#: The largest chunk a request may ask for (the embedding model reads at most 256 word pieces;
#: longer chunks are embedded by their beginning only).
MAX_CHUNK_TOKENS = 2048
Title = Annotated[SafeStr, StringConstraints(min_length=1, max_length=512)]


class DocumentCreate(RequestModel):
    """A user's own document (``user_id``) or a shared one (``namespace``): exactly one of them."""

    title: Title
    content: NonBlank = Field(
        description="Text or Markdown (limit: MEMORY_MAX_DOCUMENT_CHARS characters, default 2,000,000)."
    )
    user_id: ClientId | None = Field(None, description="The user the document belongs to.")
    namespace: ClientId | None = Field(
        None, description="A shared knowledge base: any user's search may read it with `namespaces`."
    )
    metadata: MetadataIn = Field(default_factory=dict)
    chunk_tokens: int | None = Field(
        None, ge=MIN_CHUNK_TOKENS, le=MAX_CHUNK_TOKENS,
        description="Largest chunk, in tokens (default MEMORY_DOCUMENT_CHUNK_TOKENS, 256).",
    )
    overlap_tokens: int | None = Field(
        None, ge=0, le=MAX_CHUNK_TOKENS - 1,
        description="Tokens a chunk repeats from the end of the one before it, less than chunk_tokens "
        "(default MEMORY_DOCUMENT_OVERLAP_TOKENS, 32).",
    )

    @model_validator(mode="after")
    def _one_owner(self) -> DocumentCreate:
        if (self.user_id is None) == (self.namespace is None):
            raise ValueError("give exactly one of user_id (a user's own document) or namespace (a shared one)")
        if self.chunk_tokens is not None and self.overlap_tokens is not None and self.overlap_tokens >= self.chunk_tokens:
            raise ValueError("overlap_tokens must be less than chunk_tokens")
        return self


class Document(RecordModel):
    id: str
    title: str
    user_id: str | None
    namespace: str | None
    metadata: Metadata
    chunk_tokens: int
    overlap_tokens: int
    chunk_count: int
    created_at: datetime
    updated_at: datetime


class DocumentWithContent(Document):
    content: str


class Chunk(RecordModel):
    id: str
    document_id: str
    chunk_index: int
    content: str
    tokens: int
    start_char: int = Field(description="Where the chunk starts in the document's content (characters).")
    heading: str = Field(description="The headings it stands under, 'Install > On Linux' ('' for none).")
