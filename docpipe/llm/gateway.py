"""The gateway every model call of docpipe goes through: a per-call timeout, retries with
backoff, rate and concurrency limits, a response cache on disk, and usage per purpose."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from docpipe.config import LLMConfig
from docpipe.llm.client import ChatMessage, LLMError
from docpipe.llm.providers import GenerationParams, PermanentError, Provider, ProviderError, ProviderReply, RateLimited, TransientError
from docpipe.store import JsonCache, stable_hash

log = logging.getLogger(__name__)
R = TypeVar("R")

_CACHE_FORMAT = "docpipe-llm-cache/1"  # bump to invalidate every cached reply at once
_USAGE_FIELDS = ("calls", "cache_hits", "retries", "failures", "prompt_tokens", "completion_tokens", "cost_usd")


class _Pacer:
    """GCRA pacing: at most `per_minute` units a minute, at most `burst_s` seconds' worth at once.

    `reserve` books units and returns the wait before they may be used, so the same object
    paces threads (time.sleep) and tasks (asyncio.sleep) alike.
    """

    def __init__(self, per_minute: int, burst_s: float):
        self.interval = 60.0 / per_minute
        self.depth = max(burst_s, self.interval)
        self.capacity = per_minute
        self._tat = 0.0  # theoretical arrival time of the next unit
        self._lock = threading.Lock()

    def reserve(self, units: int = 1) -> float:
        with self._lock:
            now = time.monotonic()
            # One call larger than a minute's allowance waits for a full bucket, not forever.
            self._tat = max(self._tat, now) + min(units, self.capacity) * self.interval
            return max(0.0, self._tat - self.depth - now)

    def adjust(self, units: int) -> None:
        """Correct an earlier reservation by `units` (negative = refund)."""
        with self._lock:
            self._tat += units * self.interval


class _Usage:
    def __init__(self) -> None:
        self._by_purpose: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    def add(self, purpose: str, **counts: float) -> None:
        with self._lock:
            row = self._by_purpose.setdefault(purpose, {name: 0 for name in _USAGE_FIELDS})
            for name, value in counts.items():
                row[name] += value

    def snapshot(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {purpose: dict(row) for purpose, row in self._by_purpose.items()}


@dataclass(frozen=True)
class _Request:
    messages: list[dict[str, str]]
    schema: dict[str, Any] | None
    key: str
    tokens: int  # estimated prompt + reply tokens, booked against the tpm limit
    purpose: str


class Gateway:
    """An LLMClient in front of a provider. Only successful, non-empty replies are cached, so a
    crash or a re-run repeats no call that succeeded and retries every call that did not.

    Usage counts every complete/acomplete as a call; tokens and cost count only what the
    provider reported for calls actually made (a cache hit costs nothing).
    """

    def __init__(self, provider: Provider, *, cache_dir: Path | None = None, config: LLMConfig | None = None):
        cfg = config or LLMConfig()
        self.provider = provider
        self.model = provider.model
        self.supports_schema = provider.supports_schema
        self.params = GenerationParams(temperature=cfg.temperature, max_tokens=cfg.max_tokens, seed=cfg.seed)
        self.timeout_s = cfg.timeout_s
        # The provider enforces timeout_s itself and says why it stopped; this later deadline
        # is the backstop for a provider that hangs anyway.
        self._deadline_s = cfg.timeout_s + min(5.0, 0.1 * cfg.timeout_s)
        self.max_retries = cfg.max_retries
        self.backoff_s = cfg.backoff_s
        self.backoff_max_s = cfg.backoff_max_s
        self.concurrency = 1 if provider.serial else cfg.concurrency
        # Requests are spaced evenly rather than sent in a burst: many APIs also enforce
        # per-second sub-limits. Tokens may burst up to one minute's allowance.
        self._rpm = _Pacer(cfg.rpm, burst_s=0) if cfg.rpm else None
        self._tpm = _Pacer(cfg.tpm, burst_s=60) if cfg.tpm else None
        self._cache = JsonCache(cache_dir) if cache_dir is not None else None
        self._usage = _Usage()
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()
        self._random = random.Random()

    def usage(self) -> dict[str, dict[str, float]]:
        """Per purpose: calls, cache_hits, retries, failures, prompt_tokens, completion_tokens, cost_usd."""
        return self._usage.snapshot()

    def close(self) -> None:
        close = getattr(self.provider, "close", None)
        if close is not None:
            close()

    def complete(self, messages: list[ChatMessage], *, schema: dict[str, Any] | None = None, purpose: str = "") -> str:
        request = self._request(messages, schema, purpose)
        cached = self._cached(request)
        if cached is not None:
            return cached
        for attempt in itertools.count():  # _after_failure raises after the last retry
            time.sleep(self._admit(request))
            try:
                reply = _checked(_run_with_deadline(lambda: self._provider_call(request), self._deadline_s))
            except ProviderError as exc:
                time.sleep(self._after_failure(request, exc, attempt))
                continue
            return self._after_success(request, reply, attempt)

    async def acomplete(self, messages: list[ChatMessage], *, schema: dict[str, Any] | None = None, purpose: str = "") -> str:
        request = self._request(messages, schema, purpose)
        cached = self._cached(request)
        if cached is not None:
            return cached
        async with self._gate():
            for attempt in itertools.count():  # _after_failure raises after the last retry
                await asyncio.sleep(self._admit(request))
                try:
                    reply = _checked(await self._acall_with_deadline(request))
                except ProviderError as exc:
                    await asyncio.sleep(self._after_failure(request, exc, attempt))
                    continue
                return self._after_success(request, reply, attempt)

    # -- one attempt ------------------------------------------------------------------------

    def _provider_call(self, request: _Request) -> ProviderReply:
        return self.provider.call(request.messages, request.schema, self.params, self.timeout_s)

    async def _acall_with_deadline(self, request: _Request) -> ProviderReply:
        call = self.provider.acall(request.messages, request.schema, self.params, self.timeout_s)
        try:
            return await asyncio.wait_for(call, self._deadline_s)
        except asyncio.TimeoutError:
            raise TransientError(f"no reply within {self._deadline_s:.3g} s") from None

    def _gate(self) -> asyncio.Semaphore:
        # One semaphore per event loop: a semaphore is bound to the loop it first waits on.
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = asyncio.Semaphore(self.concurrency)
        return gate

    def _admit(self, request: _Request) -> float:
        """Book this attempt against the rate limits; the seconds to wait before sending it."""
        wait = self._rpm.reserve() if self._rpm else 0.0
        if self._tpm:
            wait = max(wait, self._tpm.reserve(request.tokens))
        return wait

    # -- bookkeeping ------------------------------------------------------------------------

    def _request(self, messages: list[ChatMessage], schema: dict[str, Any] | None, purpose: str) -> _Request:
        plain = [{"role": m.role, "content": m.content} for m in messages]
        key = stable_hash(_CACHE_FORMAT, self.model, self.provider.identity, plain, asdict(self.params), schema)
        return _Request(plain, schema, key, _estimate_prompt_tokens(plain) + self.params.max_tokens, purpose)

    def _cached(self, request: _Request) -> str | None:
        record = self._cache.get(request.key) if self._cache else None
        if not (isinstance(record, dict) and isinstance(record.get("reply"), str)):
            return None
        self._usage.add(request.purpose, calls=1, cache_hits=1)
        return record["reply"]

    def _after_success(self, request: _Request, reply: ProviderReply, attempt: int) -> str:
        used = reply.prompt_tokens + reply.completion_tokens
        if self._tpm and used:
            self._tpm.adjust(used - request.tokens)
        self._usage.add(
            request.purpose,
            calls=1,
            retries=attempt,
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            cost_usd=reply.cost_usd,
        )
        if self._cache:
            # Messages, reply and usage only: nothing of the provider's settings (keys, URLs).
            record = {
                "format": _CACHE_FORMAT,
                "model": self.model,
                "params": asdict(self.params),
                "messages": request.messages,
                "reply": reply.text,
                "usage": {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens, "cost_usd": reply.cost_usd},
            }
            try:
                self._cache.put(request.key, record)
            except OSError as exc:  # a full or read-only disk must not throw away a reply already paid for
                log.warning("could not cache an LLM reply in %s: %s", self._cache.root, exc)
        return reply.text

    def _after_failure(self, request: _Request, exc: ProviderError, attempt: int) -> float:
        """The backoff before the next attempt; raises LLMError when there is none."""
        if isinstance(exc, PermanentError) or attempt >= self.max_retries:
            self._usage.add(request.purpose, calls=1, retries=attempt, failures=1)
            raise LLMError(f"{self.model}: {_one_line(exc)} ({attempt + 1} attempt(s))") from exc
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            delay = exc.retry_after * self._random.uniform(1.0, 1.1)  # never earlier than the server asked
        else:
            delay = min(self.backoff_max_s, self.backoff_s * 2**attempt) * self._random.uniform(0.5, 1.0)
        log.info("%s: attempt %d failed (%s); retrying in %.2f s", self.model, attempt + 1, _one_line(exc), delay)
        return delay


def _run_with_deadline(fn: Callable[[], R], timeout: float) -> R:
    """fn() in a daemon thread, given up after `timeout` s. A daemon thread, not an executor,
    so that a call that never returns cannot keep the interpreter from exiting."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name="docpipe-llm-call", daemon=True).start()
    if not done.wait(timeout):
        raise TransientError(f"no reply within {timeout:.3g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _checked(reply: ProviderReply) -> ProviderReply:
    if not reply.text.strip():
        raise TransientError("empty reply")
    return reply


def _estimate_prompt_tokens(messages: list[dict[str, str]]) -> int:
    # ~4 characters a token in English, plus the chat template's few tokens per message.
    return sum(len(m["content"]) for m in messages) // 4 + 4 * len(messages)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
