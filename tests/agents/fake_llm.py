"""FakeLLM: a chat model whose replies a test writes as a function of the request."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from docpipe.llm.client import ChatMessage, LLMError

Reply = Callable[[list[ChatMessage], "dict[str, Any] | None", int], str]


class FakeLLM:
    """Calls `reply(messages, schema, call_number)`; a reply that is an LLMError is raised."""

    model = "fake"

    def __init__(self, reply: Reply, supports_schema: bool = True, delay: float = 0.0):
        self.reply = reply
        self.supports_schema = supports_schema
        self.delay = delay
        self.requests: list[tuple[list[ChatMessage], dict | None]] = []
        self.in_flight = self.max_in_flight = 0

    def complete(self, messages, *, schema=None, purpose=""):
        self.requests.append((list(messages), schema))
        answer = self.reply(messages, schema, len(self.requests))
        if isinstance(answer, LLMError):
            raise answer
        return answer

    async def acomplete(self, messages, *, schema=None, purpose=""):
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            return self.complete(messages, schema=schema, purpose=purpose)
        finally:
            self.in_flight -= 1
