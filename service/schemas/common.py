"""Shared API shapes: the RFC 9457 problem and cursor pages."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from service.schemas.validators import ID_PATTERN

T = TypeVar("T")

#: Ids chosen by clients (sessions, users, agents): short, printable, URL-safe.
ClientId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=ID_PATTERN)]

Metadata = Annotated[dict[str, Any], Field(description="Free-form JSON object kept with the record.")]


class RequestModel(BaseModel):
    """A request body: unknown fields and non-finite numbers (NaN, Infinity) are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class RecordModel(BaseModel):
    """A response model read straight from a storage record's attributes."""

    model_config = ConfigDict(from_attributes=True)


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (served as application/problem+json)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field("about:blank", description="A URI that identifies the problem type.")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = Field(None, description="The request path that failed.")
    code: str = Field(description="A stable, machine-readable error code.")
    request_id: str | None = None


class Page(BaseModel, Generic[T]):
    """One page of a listing; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[T]
    next_cursor: str | None = None
