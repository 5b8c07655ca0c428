"""Memory tools for agents: OpenAI function-calling schemas and tool calls."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from service.schemas.common import RequestModel
from service.schemas.validators import bounded_json, one_shape, storable

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


ArgumentsObject = Annotated[dict[str, Any], AfterValidator(bounded_json)]
ArgumentsString = Annotated[str, StringConstraints(max_length=MAX_ARGUMENT_CHARS), AfterValidator(storable)]


def _arguments_shape(value: Any) -> str | None:
    return "object" if isinstance(value, dict) else "string" if isinstance(value, str) else None


class ToolCall(RequestModel):
    arguments: Annotated[
        ArgumentsObject | ArgumentsString,
        one_shape({"object": ArgumentsObject, "string": ArgumentsString}, _arguments_shape, "an object or a string"),
    ] = Field(
        default_factory=dict,
        description="The arguments, as an object (5 levels deep at most) or as the JSON string an LLM emitted "
        f"(at most {MAX_ARGUMENT_CHARS} characters).",
    )


class ToolResult(BaseModel):
    content: str = Field(description="The text to give the LLM as the tool message.")
    data: Any = Field(None, description="The same result, structured.")
