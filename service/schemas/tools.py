"""Memory tools for agents: OpenAI function-calling schemas and tool calls."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from service.schemas.common import RequestModel
from service.schemas.validators import bounded_json, storable

#: Characters in arguments given as a JSON string.
MAX_ARGUMENT_CHARS = 100_000


class FunctionSpec(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any] = Field(description="JSON Schema of the arguments.")


class ToolSpec(BaseModel):
    """One tool in the OpenAI function-calling format (pass the list as ``tools``)."""

    type: Literal["function"] = "function"
    function: FunctionSpec


class ToolCall(RequestModel):
    arguments: (
        Annotated[dict[str, Any], AfterValidator(bounded_json)]
        | Annotated[str, StringConstraints(max_length=MAX_ARGUMENT_CHARS), AfterValidator(storable)]
    ) = Field(
        default_factory=dict,
        description="The arguments, as an object (5 levels deep at most) or as the JSON string an LLM emitted "
        f"(at most {MAX_ARGUMENT_CHARS} characters).",
    )


class ToolResult(BaseModel):
    content: str = Field(description="The text to give the LLM as the tool message.")
    data: Any = Field(None, description="The same result, structured.")
