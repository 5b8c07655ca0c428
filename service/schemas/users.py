"""Users and their profiles."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from service.domain.profiles import FIELD_KEY_PATTERN, MAX_FIELDS, MAX_FIELDS_BYTES, fields_size
from service.schemas.common import RecordModel, RequestModel
from service.schemas.validators import METADATA_MAX_DEPTH, bounded_json


class User(RecordModel):
    """A user: whoever has a session, memory, document or profile in your tenant."""

    id: str
    session_count: int
    message_count: int = Field(description="Messages in the user's sessions.")
    memory_count: int = Field(description="Long-term memories (not expired).")
    document_count: int
    first_seen: datetime = Field(description="Creation time of the user's oldest record.")
    last_seen: datetime = Field(description="Time of the user's latest change or message.")


class ProfileFact(BaseModel):
    id: str = Field(description="The memory's id.")
    content: str
    importance: float


class ProfileTopic(BaseModel):
    term: str = Field(description="A memory topic or keyword (case-folded).")
    weight: float = Field(description="Recency-weighted frequency; the first topic weighs 1.")


class Profile(BaseModel):
    """The client's fields and what the user's memories say about them."""

    user_id: str
    fields: dict[str, Any] = Field(description="Set by the client with PATCH (JSON merge patch).")
    facts: list[ProfileFact] = Field(description="The most important semantic and profile memories (importance, then recency).")
    topics: list[ProfileTopic] = Field(description="Recurring memory topics and keywords, recent ones weighing more.")
    updated_at: datetime | None = Field(description="Last change of the fields or of the derived parts.")


def _within_size(value: dict[str, Any]) -> dict[str, Any]:
    if fields_size(value) > MAX_FIELDS_BYTES:
        raise ValueError(f"fields are at most {MAX_FIELDS_BYTES} bytes of JSON")
    return value


FieldKey = Annotated[str, StringConstraints(pattern=FIELD_KEY_PATTERN)]

ProfileFields = Annotated[
    dict[FieldKey, Any],
    Field(
        max_length=MAX_FIELDS,
        description=(
            f"A JSON merge patch (RFC 7396) of the fields: a null removes its key, objects merge, anything else "
            f"replaces. At most {MAX_FIELDS} fields (also after the patch), keys matching {FIELD_KEY_PATTERN}, "
            f"{MAX_FIELDS_BYTES} bytes of JSON in all, values {METADATA_MAX_DEPTH} levels deep, finite numbers, "
            "64-bit integers, strings without NUL or lone surrogates."
        ),
        json_schema_extra={"propertyNames": {"pattern": FIELD_KEY_PATTERN}},
    ),
    AfterValidator(bounded_json),
    AfterValidator(_within_size),
]


class ProfileUpdate(RequestModel):
    fields: ProfileFields
