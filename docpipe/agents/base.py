"""BaseAgent[T]: ask a model for a T, climbing down a ladder until a valid T is in hand.

1. structured output: the provider constrains the reply to T's JSON schema;
2. plain JSON: the reply is repaired (fences, <think>, chatter) and validated, and the
   validation error goes back to the model for a bounded number of retries;
3. the agent's deterministic heuristic.

Whatever tier answers, the value is validated with the agent's validation context (a
citation validator sees the source chunk), so a flaky model lowers the quality of a
result, never its integrity. Validators that need the context skip their check when it is
None (an object built in code, as a heuristic builds it), as instructor's CitationMixin does. The ladder is written once, as a generator that yields model
calls; `run` and `arun` only drive it, blocking or on an event loop.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from docpipe.agents.repair import extract_json
from docpipe.llm.client import ChatMessage, LLMClient, LLMError

T = TypeVar("T", bound=BaseModel)
In = TypeVar("In")


class Tier(str, Enum):
    structured = "structured"
    json = "json"
    heuristic = "heuristic"


@dataclass(frozen=True)
class AgentResult(Generic[T]):
    value: T
    tier: Tier
    calls: int  # model calls made, failed ones included
    errors: list[str] = field(default_factory=list)  # why each step down the ladder happened


@dataclass(frozen=True)
class _Call:
    messages: list[ChatMessage]
    schema: dict[str, Any] | None


class BaseAgent(ABC, Generic[In, T]):
    """Subclasses set `response_model` and `system_prompt`, and write `build_prompt` and `heuristic`."""

    response_model: type[T]
    system_prompt: str
    max_retries: int = 2  # plain-JSON replies sent back with their validation error

    def __init__(self, llm: LLMClient | None = None):
        self.llm = llm

    @property
    def name(self) -> str:
        return type(self).__name__

    @abstractmethod
    def build_prompt(self, item: In) -> str:
        """The user message for one input."""

    @abstractmethod
    def heuristic(self, item: In) -> T:
        """A deterministic answer from the input alone: the last tier, always available."""

    def schema(self, item: In) -> dict[str, Any]:
        """The JSON schema the provider constrains tier 1 to; an agent may narrow it per input."""
        return self.response_model.model_json_schema()

    def validation_context(self, item: In) -> dict[str, Any] | None:
        """Extra data validators need (e.g. the source chunk for a citation check)."""
        return None

    def run(self, item: In) -> AgentResult[T]:
        ladder = self._ladder(item)
        try:
            call = next(ladder)
            while True:
                try:
                    reply: str | LLMError = self.llm.complete(call.messages, schema=call.schema, purpose=self.name)
                except LLMError as exc:
                    reply = exc
                call = ladder.send(reply)
        except StopIteration as done:
            return done.value

    async def arun(self, item: In) -> AgentResult[T]:
        ladder = self._ladder(item)
        try:
            call = next(ladder)
            while True:
                try:
                    reply: str | LLMError = await self.llm.acomplete(call.messages, schema=call.schema, purpose=self.name)
                except LLMError as exc:
                    reply = exc
                call = ladder.send(reply)
        except StopIteration as done:
            return done.value

    async def arun_many(self, items: Iterable[In], concurrency: int = 4) -> list[AgentResult[T]]:
        """Run many inputs at once, at most `concurrency` in flight; results keep the input order."""
        gate = asyncio.Semaphore(concurrency)

        async def one(item: In) -> AgentResult[T]:
            async with gate:
                return await self.arun(item)

        return list(await asyncio.gather(*(one(item) for item in items)))

    def _ladder(self, item: In) -> Generator[_Call, str | LLMError, AgentResult[T]]:
        errors: list[str] = []
        calls = 0
        if self.llm is not None:
            messages = [ChatMessage(role="system", content=self.system_prompt), ChatMessage(role="user", content=self.build_prompt(item))]
            if self.llm.supports_schema:
                calls += 1
                reply = yield _Call(messages, self.schema(item))
                value = self._accept(reply, item, errors, Tier.structured)
                if value is not None:
                    return AgentResult(value, Tier.structured, calls, errors)
            for _ in range(1 + self.max_retries):
                calls += 1
                reply = yield _Call(messages, None)
                if isinstance(reply, LLMError):
                    errors.append(f"json: provider failed: {reply}")
                    break  # a provider that is down stays down: do not hammer it
                value = self._accept(reply, item, errors, Tier.json)
                if value is not None:
                    return AgentResult(value, Tier.json, calls, errors)
                messages = [
                    *messages,
                    ChatMessage(role="assistant", content=reply),
                    ChatMessage(role="user", content=_retry_prompt(errors[-1])),
                ]
        value = self._validate(self.heuristic(item).model_dump(), item)  # the heuristic obeys the same validators
        return AgentResult(value, Tier.heuristic, calls, errors)

    def _accept(self, reply: str | LLMError, item: In, errors: list[str], tier: Tier) -> T | None:
        """The validated value of a reply, or None with the reason appended to `errors`."""
        if isinstance(reply, LLMError):
            errors.append(f"{tier.value}: provider failed: {reply}")
            return None
        try:
            return self._validate(extract_json(reply), item)
        except ValidationError as exc:
            errors.append(f"{tier.value}: {_short(exc)}")
        except ValueError as exc:
            errors.append(f"{tier.value}: {exc}")
        return None

    def _validate(self, data: Any, item: In) -> T:
        return self.response_model.model_validate(data, context=self.validation_context(item))


def _retry_prompt(error: str) -> str:
    return f"Your reply could not be used ({error}). Reply again with only the JSON object, fixed."


def _short(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "reply"
    return f"{where}: {first['msg']} ({exc.error_count()} problem(s))"
