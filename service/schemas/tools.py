"""Memory tools for agents: OpenAI function-calling schemas and tool calls."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class FunctionSpec(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any] = Field(description="JSON Schema of the arguments.")


class ToolSpec(BaseModel):
    """One tool in the OpenAI function-calling format (pass the list as ``tools``)."""

    type: Literal["function"] = "function"
    function: FunctionSpec


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    arguments: dict[str, Any] | str = Field(
        default_factory=dict, description="The arguments, as an object or as the JSON string an LLM emitted."
    )


class ToolResult(BaseModel):
    content: str = Field(description="The text to give the LLM as the tool message.")
    data: Any = Field(None, description="The same result, structured.")
