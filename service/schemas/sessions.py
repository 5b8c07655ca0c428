"""The session resource."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from service.schemas.common import ClientId, Metadata, RecordModel, RequestModel
from service.schemas.validators import MetadataIn


class SessionCreate(RequestModel):
    id: ClientId | None = Field(None, description="Your own id for the session; a UUID is made when absent.")
    user_id: ClientId
    agent_id: ClientId | None = None
    metadata: MetadataIn = Field(default_factory=dict)


class SessionUpdate(RequestModel):
    user_id: ClientId | None = None
    agent_id: ClientId | None = None
    metadata: MetadataIn | None = Field(None, description="Replaces the whole metadata object.")


class Session(RecordModel):
    id: str
    user_id: str
    agent_id: str | None
    metadata: Metadata
    created_at: datetime
    updated_at: datetime
