"""Bulk import of memories: the lines of ``POST /v1/memories/import`` and its answer."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, Field

from service.schemas.memories import MemoryCreate

#: The longest vector a line may carry (the embedding model's dimension is checked on top).
MAX_VECTOR = 4096


class MemoryImportLine(MemoryCreate):
    """One line of an import: a memory as ``POST /v1/memories`` takes it, with an optional id
    and an optional precomputed dense vector."""

    id: UUID | None = Field(
        None,
        description="Keep this id (a UUID, stored in its canonical form); a line whose id is already "
        "stored is skipped, so running an import again is safe. A fresh UUID when absent.",
    )
    vector: list[float] | None = Field(
        None,
        min_length=1,
        max_length=MAX_VECTOR,
        description="The content's dense embedding by the service's model (exactly its dimension, finite "
        "numbers, not all zero; normalised to unit length). Without it the worker embeds the memory.",
    )


class MemoryImportResult(BaseModel):
    imported: int = Field(description="Memories stored by this import.")
    skipped: int = Field(description="Lines whose id was already stored (or repeated an earlier line's).")
    indexed: int = Field(description="Stored memories whose vectors were written before the answer.")
    queued: int = Field(description="Stored memories left to the background worker to embed and index.")
