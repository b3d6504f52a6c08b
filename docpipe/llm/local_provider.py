"""A provider on llama-cpp-python: a GGUF model run in this process, one call at a time."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

try:
    import llama_cpp
except ImportError as exc:
    raise ImportError("the local model provider needs llama-cpp-python: pip install 'docpipe[local]'") from exc

from docpipe.llm.providers import GenerationParams, Messages, PermanentError, ProviderReply
from docpipe.runtime.llama import default_threads, quiet_llama_logs


class _DeadlinePassed(Exception):
    pass


class _Llama(llama_cpp.Llama):
    """Llama that stops generating once a deadline has passed.

    create_chat_completion takes no stopping criteria, and a logits processor runs inside a
    ctypes callback, where an exception is printed and swallowed; `eval` runs once per token
    in Python, so it is where a deadline can stop the work for real (a thread cannot be killed).
    """

    deadline: float | None = None

    def eval(self, tokens):  # noqa: ANN001 - llama_cpp's own signature
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise _DeadlinePassed
        super().eval(tokens)


class LocalProvider:
    """A GGUF file through llama-cpp-python, loaded on the first call and kept.

    Schema replies use llama.cpp's grammar-constrained sampling (`response_format` json_object
    with a schema). A reply cut off by max_tokens (finish_reason "length") is returned as it
    is, not retried: at a fixed seed a retry would be cut off in the same place, and the
    agent's validation rejects the broken JSON and steps down its ladder. A call that passes
    its timeout is a PermanentError for the same reason: the same machine would take as long
    again, so the message says to raise llm.timeout_s or lower llm.max_tokens instead.
    """

    supports_schema = True
    serial = True  # one model, one context: calls must not overlap

    def __init__(
        self, model_path: Path, *, model_id: str | None = None, context_tokens: int = 2048, threads: int | None = None, seed: int = 0
    ):
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise FileNotFoundError(f"no GGUF model at {self.model_path}")
        stat = self.model_path.stat()
        self.model = model_id or self.model_path.name
        # A model_id names the file's content (the packaged model's carries its hash); a bare
        # file is known by name, size and date, so that replacing it invalidates the cache.
        self.identity = "gguf" if model_id else f"gguf:{self.model_path.name}:{stat.st_size}:{int(stat.st_mtime)}"
        self.context_tokens = context_tokens
        self.threads = threads or default_threads()
        self.seed = seed
        self._llama: _Llama | None = None
        self._lock = threading.Lock()

    def call(self, messages: Messages, schema: dict[str, Any] | None, params: GenerationParams, timeout: float) -> ProviderReply:
        deadline = time.monotonic() + timeout  # waiting for the lock and loading count too, as they do for the gateway
        with self._lock:
            llama = self._loaded()
            # Without a reset llama-cpp-python reuses the cached prompt prefix, and the logits,
            # hence the reply, then depend on which call came before: start each call clean so
            # the same request always gets the same reply (the cache relies on it).
            llama.reset()
            llama.deadline = deadline
            try:
                response = llama.create_chat_completion(messages=messages, **chat_arguments(schema, params))
            except _DeadlinePassed:
                raise PermanentError(f"generation passed the {timeout:g} s timeout; raise llm.timeout_s or lower llm.max_tokens") from None
            except (ValueError, RuntimeError) as exc:  # prompt over the context window, a grammar it cannot build
                raise PermanentError(f"llama.cpp: {exc}") from exc
            finally:
                llama.deadline = None
        usage = response.get("usage") or {}
        return ProviderReply(
            text=response["choices"][0]["message"].get("content") or "",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
        )

    async def acall(self, messages: Messages, schema: dict[str, Any] | None, params: GenerationParams, timeout: float) -> ProviderReply:
        return await asyncio.to_thread(self.call, messages, schema, params, timeout)

    def close(self) -> None:
        with self._lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None

    def _loaded(self) -> _Llama:
        if self._llama is None:
            quiet_llama_logs()
            try:
                self._llama = _Llama(
                    model_path=str(self.model_path),
                    n_ctx=self.context_tokens,
                    n_threads=self.threads,
                    n_threads_batch=self.threads,
                    seed=self.seed,
                    verbose=False,
                )
            except (ValueError, RuntimeError) as exc:  # not a GGUF, an architecture this build lacks
                raise PermanentError(f"cannot load {self.model_path}: {exc}") from exc
        return self._llama


def chat_arguments(schema: dict[str, Any] | None, params: GenerationParams) -> dict[str, Any]:
    """create_chat_completion's sampling arguments; scripts/bench_gateway.py sends the raw model the same."""
    sampling: dict[str, Any] = {"temperature": params.temperature, "max_tokens": params.max_tokens, "seed": params.seed}
    if schema is not None:
        sampling["response_format"] = {"type": "json_object", "schema": grammar_friendly(schema)}
    return sampling


# String length bounds become one grammar rule per allowed character in llama.cpp's
# JSON-schema converter: a maxLength of 1500 exceeds its limits ("number of rules ... exceeds
# sane defaults") and the call fails, while a short one is cheap and stops a small model from
# rambling inside a string. Long bounds are dropped here; pydantic still enforces them.
_GRAMMAR_MAX_LENGTH = 256


def grammar_friendly(schema: Any) -> Any:
    """The schema without what llama.cpp's grammar converter cannot take: string length bounds
    too long for it, and enum options holding a double quote or a backslash, which it escapes
    wrongly ("error parsing grammar"); an enum left with no option becomes a plain string."""
    if isinstance(schema, list):
        return [grammar_friendly(value) for value in schema]
    if not isinstance(schema, dict):
        return schema
    too_long = schema.get("maxLength", 0) > _GRAMMAR_MAX_LENGTH
    out = {key: grammar_friendly(value) for key, value in schema.items() if not (too_long and key in ("minLength", "maxLength"))}
    if isinstance(schema.get("enum"), list):
        options = [o for o in schema["enum"] if not (isinstance(o, str) and ('"' in o or "\\" in o))]
        if options:
            out["enum"] = options
        else:
            del out["enum"]
            out["type"] = "string"
    return out
