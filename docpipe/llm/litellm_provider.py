"""A provider on litellm: hosted APIs (openai/..., anthropic/...), Ollama, or any
OpenAI-compatible server (vLLM, llama.cpp server) through `api_base`. Keys come from the
environment, as litellm reads them; this module never sees or stores them."""

from __future__ import annotations

import os
import warnings
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from docpipe.runtime import offline

offline.apply()  # before the import: otherwise litellm downloads its model price list at import time

try:
    import litellm
except ImportError as exc:
    raise ImportError("the API provider needs litellm: pip install 'docpipe[api]'") from exc

from docpipe.llm.providers import GenerationParams, Messages, PermanentError, ProviderError, ProviderReply, RateLimited, TransientError  # noqa: E402 - after the offline switches / the patching import above

litellm.suppress_debug_info = True  # no "Give Feedback / Get Help" banner on every error
# litellm 1.106's response types use typing.ReadOnly, which pydantic warns about at the first
# call; harmless here. Can go when a litellm upgrade no longer triggers it.
warnings.filterwarnings("ignore", message=r"Item '\w+' on TypedDict class '\w+' is using the `ReadOnly` qualifier", category=UserWarning)

_TRANSIENT = (
    litellm.Timeout,
    litellm.APIConnectionError,
    litellm.InternalServerError,
    litellm.ServiceUnavailableError,
    litellm.BadGatewayError,
)
_PERMANENT = (
    litellm.AuthenticationError,
    litellm.PermissionDeniedError,
    litellm.BadRequestError,
    litellm.NotFoundError,
    litellm.UnprocessableEntityError,
    litellm.BudgetExceededError,
)


class LiteLLMProvider:
    """Any litellm model string. Replies are constrained to a JSON schema through
    `response_format`, which litellm translates for providers that spell it differently."""

    supports_schema = True
    serial = False

    def __init__(self, model: str, *, api_base: str | None = None):
        self.model = model
        self.api_base = api_base
        self.identity = f"litellm:{api_base or ''}"

    def call(self, messages: Messages, schema: dict[str, Any] | None, params: GenerationParams, timeout: float) -> ProviderReply:
        try:
            response = litellm.completion(**self._request(messages, schema, params, timeout))
        except Exception as exc:
            raise _mapped(exc) from exc
        return _reply(response)

    async def acall(self, messages: Messages, schema: dict[str, Any] | None, params: GenerationParams, timeout: float) -> ProviderReply:
        try:
            response = await litellm.acompletion(**self._request(messages, schema, params, timeout))
        except Exception as exc:
            raise _mapped(exc) from exc
        return _reply(response)

    def _request(self, messages: Messages, schema: dict[str, Any] | None, params: GenerationParams, timeout: float) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": params.temperature,
            "max_tokens": params.max_tokens,
            "seed": params.seed,
            "timeout": timeout,
            # The gateway retries; litellm and the openai SDK under it must not retry as well.
            "num_retries": 0,
            "max_retries": 0,
            "drop_params": True,  # e.g. `seed` where a provider has none, rather than a 400
        }
        if self.api_base:
            request["api_base"] = self.api_base
            if self.model.startswith("openai/") and not os.environ.get("OPENAI_API_KEY"):
                request["api_key"] = "none"  # local OpenAI-compatible servers take no key, but the SDK demands one
        if schema is not None:
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": str(schema.get("title") or "reply"), "schema": schema, "strict": False},
            }
        return request


def _reply(response: Any) -> ProviderReply:
    text = response.choices[0].message.content or ""
    usage = getattr(response, "usage", None)
    try:
        cost = float(litellm.completion_cost(completion_response=response) or 0.0)
    except Exception:  # a model missing from litellm's price list (local servers): no cost known
        cost = 0.0
    return ProviderReply(
        text=text,
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        cost_usd=cost,
    )


def _mapped(exc: Exception) -> ProviderError:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    if isinstance(exc, litellm.RateLimitError):
        return RateLimited(message, retry_after=_retry_after(exc))
    if isinstance(exc, _PERMANENT):
        return PermanentError(message)
    if isinstance(exc, _TRANSIENT):
        return TransientError(message)
    status = getattr(exc, "status_code", None)
    if status == 429:
        return RateLimited(message, retry_after=_retry_after(exc))
    if isinstance(status, int) and (status >= 500 or status in (408, 409)):
        return TransientError(message)
    if isinstance(exc, litellm.APIError) and not (isinstance(status, int) and 400 <= status < 500):
        return TransientError(message)
    # A 4xx, or not an API error at all (a bug, a bad setting): retrying would not help.
    return PermanentError(f"{type(exc).__name__}: {message}")


def _retry_after(exc: Exception) -> float | None:
    """The Retry-After header of a 429, in seconds: litellm keeps response headers in more than one place."""
    sources = (
        getattr(getattr(exc, "response", None), "headers", None),
        getattr(exc, "litellm_response_headers", None),
        getattr(exc, "headers", None),
    )
    for headers in sources:
        for name, value in dict(headers or {}).items():
            if name.lower() == "retry-after":
                return _seconds(str(value))
    return None


def _seconds(value: str) -> float | None:
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # the other form the header may take: an HTTP date
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
    except (TypeError, ValueError):
        return None
