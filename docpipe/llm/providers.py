"""What the gateway needs from a backend that serves a model (litellm, llama-cpp-python, a fake),
and the three ways a backend call can fail: rate-limited, transient, permanent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class GenerationParams:
    """Sampling settings of one call; part of the cache key."""

    temperature: float = 0.2
    max_tokens: int = 768
    seed: int = 0


@dataclass(frozen=True)
class ProviderReply:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


class ProviderError(Exception):
    """A backend call that failed; the subclass tells the gateway whether to try again."""


class TransientError(ProviderError):
    """Worth retrying after a backoff: a timeout, a dropped connection, a 5xx, an empty reply."""


class RateLimited(TransientError):
    """A 429. `retry_after` is the server's Retry-After in seconds, when it sent one."""

    def __init__(self, message: str = "rate limited", retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(ProviderError):
    """The same request will fail again (bad key, bad request, unknown model): never retried."""


Messages = list[dict[str, str]]  # [{"role": ..., "content": ...}], the shape every backend takes


class Provider(Protocol):
    """One backend. `serial` = it can run only one call at a time (a model in this process)."""

    model: str
    supports_schema: bool
    serial: bool
    # What else decides the replies (server URL, model file identity); hashed into the cache
    # key, never written out.
    identity: str

    def call(self, messages: Messages, schema: dict[str, Any] | None, params: GenerationParams, timeout: float) -> ProviderReply: ...

    async def acall(self, messages: Messages, schema: dict[str, Any] | None, params: GenerationParams, timeout: float) -> ProviderReply: ...
