"""FakeProvider: a backend whose every reply a test writes as a function of the request."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from docpipe.llm.providers import GenerationParams, Messages, ProviderError, ProviderReply


@dataclass(frozen=True)
class Sleep:
    """A reply that takes `seconds` to come (past the gateway's timeout, when a test wants one)."""

    seconds: float
    then: str = "late"


# reply(messages, schema, call_number) -> text, a ProviderReply, a ProviderError to raise, or Sleep.
Reply = Callable[[Messages, "dict[str, Any] | None", int], "str | ProviderReply | ProviderError | Sleep"]


class FakeProvider:
    model = "fake-model"
    identity = "fake"

    def __init__(self, reply: Reply, *, supports_schema: bool = True, serial: bool = False):
        self.reply = reply
        self.supports_schema = supports_schema
        self.serial = serial
        self.calls = 0
        self.requests: list[tuple[Messages, dict | None, GenerationParams]] = []
        self.call_times: list[float] = []
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()

    def _next(self, messages: Messages, schema: dict | None, params: GenerationParams):
        with self._lock:
            self.calls += 1
            self.requests.append((messages, schema, params))
            self.call_times.append(time.monotonic())
            return self.reply(messages, schema, self.calls)

    def call(self, messages, schema, params, timeout) -> ProviderReply:
        answer = self._next(messages, schema, params)
        if isinstance(answer, Sleep):
            time.sleep(answer.seconds)
            answer = answer.then
        return _reply(answer)

    async def acall(self, messages, schema, params, timeout) -> ProviderReply:
        answer = self._next(messages, schema, params)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(answer.seconds if isinstance(answer, Sleep) else 0.01)
        finally:
            self.in_flight -= 1
        return _reply(answer.then if isinstance(answer, Sleep) else answer)


def _reply(answer: str | ProviderReply | ProviderError) -> ProviderReply:
    if isinstance(answer, ProviderError):
        raise answer
    if isinstance(answer, ProviderReply):
        return answer
    return ProviderReply(text=answer, prompt_tokens=10, completion_tokens=len(answer.split()), cost_usd=0.001)
