"""The session resource."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from service.schemas.common import ClientId, Metadata, RecordModel


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: ClientId | None = Field(None, description="Your own id for the session; a UUID is made when absent.")
    user_id: ClientId
    agent_id: ClientId | None = None
    metadata: Metadata = Field(default_factory=dict)


class SessionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: ClientId | None = None
    agent_id: ClientId | None = None
    metadata: Metadata | None = Field(None, description="Replaces the whole metadata object.")


class Session(RecordModel):
    id: str
    user_id: str
    agent_id: str | None
    metadata: Metadata
    created_at: datetime
    updated_at: datetime
