"""What an agent needs from a language model, whatever serves it (an API through litellm,
a local GGUF through llama-cpp-python, or a fake in tests)."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


class LLMError(Exception):
    """A call that failed for good (after the gateway's own retries): down, timed out, refused."""


class LLMClient(Protocol):
    """A chat model. `schema`, when given and supported, constrains the reply to that JSON schema."""

    model: str
    supports_schema: bool

    def complete(self, messages: list[ChatMessage], *, schema: dict[str, Any] | None = None, purpose: str = "") -> str:
        """The model's reply text; raises LLMError when no reply can be had."""
        ...

    async def acomplete(self, messages: list[ChatMessage], *, schema: dict[str, Any] | None = None, purpose: str = "") -> str:
        """The same, without blocking the event loop, so that many calls can run at once."""
        ...
