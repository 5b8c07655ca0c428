"""/v1/documents: the knowledge base (RAG): documents, chunked and indexed for search."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Response, status

from service.api.deps import DocumentsDep, StateDep, TenantDep
from service.api.params import Cursor, PageLimit
from service.api.routing import resource_router
from service.domain.documents import NewDocument
from service.schemas.common import ClientId, Page
from service.schemas.documents import Chunk, Document, DocumentCreate, DocumentWithContent
from service.schemas.validators import ID_PATTERN
from service.storage.records import DocumentQuery

router = resource_router("documents", "/documents")

DocumentId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN, description="The document's id.")]
ChunkCursor = Annotated[
    str | None, Query(max_length=9, pattern=r"^[0-9]+$", description="The next_cursor of the previous page.")
]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=Document)
async def create_document(body: DocumentCreate, documents: DocumentsDep, tenant: TenantDep) -> Document:
    """Store a document: split into chunks (by headings, paragraphs, sentences) and queued for
    indexing in the same transaction; searchable (`sources: ["documents"]`) once indexed."""
    record = await documents.add(tenant, NewDocument(**body.model_dump()))
    return Document.model_validate(record)


@router.get("", response_model=Page[Document])
async def list_documents(
    documents: DocumentsDep,
    tenant: TenantDep,
    state: StateDep,
    user_id: Annotated[ClientId | None, Query(description="Only this user's own documents.")] = None,
    namespace: Annotated[ClientId | None, Query(description="Only documents of this namespace.")] = None,
    cursor: Cursor = None,
    limit: PageLimit = 50,
) -> Page[Document]:
    """List documents, newest first (without their content)."""
    query = DocumentQuery(
        tenant_id=tenant,
        limit=min(limit, state.settings.max_page_size),
        user_id=user_id,
        namespace=namespace,
        cursor=cursor,
    )
    page = await documents.list(query)
    return Page[Document](items=[Document.model_validate(d) for d in page.items], next_cursor=page.next_cursor)


@router.get("/{document_id}", response_model=DocumentWithContent)
async def get_document(document_id: DocumentId, documents: DocumentsDep, tenant: TenantDep) -> DocumentWithContent:
    """Read one document with its content."""
    return DocumentWithContent.model_validate(await documents.get(tenant, document_id))


@router.get("/{document_id}/chunks", response_model=Page[Chunk])
async def list_chunks(
    document_id: DocumentId,
    documents: DocumentsDep,
    tenant: TenantDep,
    state: StateDep,
    cursor: ChunkCursor = None,
    limit: PageLimit = 50,
) -> Page[Chunk]:
    """A document's chunks in order."""
    page = await documents.chunks(tenant, document_id, cursor, min(limit, state.settings.max_page_size))
    return Page[Chunk](items=[Chunk.model_validate(c) for c in page.items], next_cursor=page.next_cursor)


@router.delete("/{document_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_document(document_id: DocumentId, documents: DocumentsDep, tenant: TenantDep) -> Response:
    """Delete a document and its chunks; they leave the search index in the background."""
    await documents.delete(tenant, document_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
