"""The gateway over a FakeProvider: retries and backoff, Retry-After, timeouts, rate and
concurrency limits, the disk cache, and usage per purpose."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from docpipe.agents.base import Tier
from docpipe.config import LLMConfig
from docpipe.llm.client import ChatMessage, LLMError
from docpipe.llm.gateway import Gateway
from docpipe.llm.providers import PermanentError, ProviderReply, RateLimited, TransientError
from tests.agents.fake_agent import Answer, FakeAnswerAgent
from tests.llm.fake_provider import FakeProvider, Sleep

ASK = [ChatMessage(role="user", content="When does the archive open?")]


def config(**overrides) -> LLMConfig:
    # Small backoffs so that retries cost milliseconds.
    return LLMConfig(**{"backoff_s": 0.01, "backoff_max_s": 0.05, "max_retries": 3, "timeout_s": 5.0, **overrides})


def scripted(*answers):
    """A reply function that plays `answers` in order and repeats the last one."""
    return lambda messages, schema, n: answers[min(n, len(answers)) - 1]


def test_transient_failures_are_retried_and_counted():
    provider = FakeProvider(scripted(TransientError("503"), TransientError("503"), "at nine"))
    gateway = Gateway(provider, config=config())
    assert gateway.complete(ASK, purpose="qa") == "at nine"
    assert provider.calls == 3
    assert gateway.usage()["qa"]["retries"] == 2
    assert gateway.usage()["qa"]["failures"] == 0


def test_backoff_doubles_between_attempts():
    provider = FakeProvider(scripted(TransientError("x"), TransientError("x"), TransientError("x"), "ok"))
    Gateway(provider, config=config(backoff_s=0.1, backoff_max_s=10)).complete(ASK)
    gaps = [b - a for a, b in zip(provider.call_times, provider.call_times[1:])]
    # Jitter keeps each delay within [1/2, 1] of backoff_s * 2**attempt.
    for attempt, gap in enumerate(gaps):
        assert 0.1 * 2**attempt * 0.5 <= gap <= 0.1 * 2**attempt + 0.3  # slack for a loaded machine


def test_backoff_is_capped():
    provider = FakeProvider(scripted(*[TransientError("x")] * 4, "ok"))
    Gateway(provider, config=config(backoff_s=0.05, backoff_max_s=0.06, max_retries=4)).complete(ASK)
    assert provider.call_times[-1] - provider.call_times[0] < 4 * 0.06 + 0.2


def test_retry_after_is_honoured():
    provider = FakeProvider(scripted(RateLimited(retry_after=1.0), "ok"))
    assert Gateway(provider, config=config()).complete(ASK) == "ok"
    assert provider.call_times[1] - provider.call_times[0] >= 1.0


@pytest.fixture
def sleeps(monkeypatch):
    """The waits the gateway asks for (and takes), recorded: what it decided, not how busy the machine was."""
    import types

    from docpipe.llm import gateway as module

    asked: list[float] = []

    def sleep(seconds: float) -> None:
        asked.append(seconds)
        time.sleep(seconds)

    monkeypatch.setattr(module, "time", types.SimpleNamespace(sleep=sleep, monotonic=time.monotonic))
    return asked


def test_rate_limit_without_retry_after_backs_off_normally(sleeps):
    provider = FakeProvider(scripted(RateLimited(retry_after=None), "ok"))
    Gateway(provider, config=config()).complete(ASK)
    assert provider.calls == 2 and 0 < max(sleeps) < 0.5  # the configured backoff, not a minute's Retry-After


def test_a_call_past_the_timeout_is_retried_then_fails():
    provider = FakeProvider(scripted(Sleep(2.0)))
    gateway = Gateway(provider, config=config(timeout_s=0.2, max_retries=2))
    with pytest.raises(LLMError, match="no reply within") as error:
        gateway.complete(ASK, purpose="qa")
    assert provider.calls == 3  # each attempt abandoned at its deadline and retried
    assert "\n" not in str(error.value)
    assert gateway.usage()["qa"]["failures"] == 1


def test_a_timed_out_attempt_can_be_followed_by_a_reply():
    provider = FakeProvider(scripted(Sleep(2.0), "ok"))
    assert Gateway(provider, config=config(timeout_s=0.2)).complete(ASK) == "ok"
    assert provider.calls == 2


def test_permanent_errors_are_not_retried():
    provider = FakeProvider(scripted(PermanentError("invalid api key")))
    gateway = Gateway(provider, config=config())
    with pytest.raises(LLMError, match="invalid api key"):
        gateway.complete(ASK, purpose="qa")
    assert provider.calls == 1
    assert gateway.usage()["qa"] | {"retries": 0, "failures": 1} == gateway.usage()["qa"]


def test_empty_replies_count_as_failures():
    provider = FakeProvider(scripted("", "  \n", "at nine"))
    assert Gateway(provider, config=config()).complete(ASK) == "at nine"
    assert provider.calls == 3


def test_only_empty_replies_end_in_llm_error():
    provider = FakeProvider(scripted(""))
    with pytest.raises(LLMError, match="empty reply"):
        Gateway(provider, config=config(max_retries=1)).complete(ASK)
    assert provider.calls == 2


def test_rpm_spaces_the_calls():
    provider = FakeProvider(scripted("ok"))
    gateway = Gateway(provider, config=config(rpm=600))  # one call every 0.1 s
    for n in range(4):
        gateway.complete([ChatMessage(role="user", content=f"question {n}")])
    gaps = [b - a for a, b in zip(provider.call_times, provider.call_times[1:])]
    assert min(gaps) >= 0.09


def test_tpm_waits_after_a_call_that_used_a_minutes_worth():
    heavy = ProviderReply(text="ok", prompt_tokens=1200, completion_tokens=0)  # tpm=1200: one minute's worth
    provider = FakeProvider(scripted(heavy, "ok"))
    gateway = Gateway(provider, config=config(tpm=1200, max_tokens=16))
    gateway.complete(ASK)
    gateway.complete([ChatMessage(role="user", content="another question")])
    # The second call's ~25 tokens come back at 20 a second once the bucket is empty.
    assert provider.call_times[1] - provider.call_times[0] >= 0.8


def test_tpm_estimate_is_corrected_after_the_call(sleeps):
    # Each call books ~1000 tokens ahead (max_tokens) but uses ~12: the refunds let all pass at once.
    provider = FakeProvider(scripted("ok"))
    gateway = Gateway(provider, config=config(tpm=1500, max_tokens=1000))
    for n in range(4):
        gateway.complete([ChatMessage(role="user", content=f"question {n}")])
    assert provider.calls == 4 and sleeps == [0.0] * 4  # none of them had to wait


def test_acomplete_keeps_to_the_concurrency_limit():
    provider = FakeProvider(scripted(Sleep(0.05, then="ok")))
    gateway = Gateway(provider, config=config(concurrency=3))

    async def main():
        asks = [[ChatMessage(role="user", content=f"question {n}")] for n in range(12)]
        return await asyncio.gather(*(gateway.acomplete(a) for a in asks))

    assert asyncio.run(main()) == ["ok"] * 12
    assert provider.max_in_flight == 3


def test_a_serial_provider_gets_one_call_at_a_time():
    provider = FakeProvider(scripted(Sleep(0.02, then="ok")), serial=True)
    gateway = Gateway(provider, config=config(concurrency=8))

    async def main():
        await asyncio.gather(*(gateway.acomplete([ChatMessage(role="user", content=str(n))]) for n in range(6)))

    asyncio.run(main())
    assert provider.max_in_flight == 1


def test_acomplete_retries_and_times_out_like_complete():
    provider = FakeProvider(scripted(TransientError("x"), Sleep(2.0)))
    gateway = Gateway(provider, config=config(timeout_s=0.2, max_retries=2))
    with pytest.raises(LLMError, match="no reply within"):
        asyncio.run(gateway.acomplete(ASK, purpose="qa"))
    assert provider.calls == 3
    assert gateway.usage()["qa"]["retries"] == 2


def test_the_same_gateway_serves_several_event_loops():
    # A semaphore is bound to one loop; a second asyncio.run must not trip over the first's.
    gateway = Gateway(FakeProvider(scripted(Sleep(0.01, then="ok"))), config=config(concurrency=1))

    async def main():
        return await asyncio.gather(*(gateway.acomplete([ChatMessage(role="user", content=str(n))]) for n in range(3)))

    for _ in range(2):
        assert asyncio.run(main()) == ["ok"] * 3


def test_a_rerun_is_answered_from_the_cache(tmp_path):
    first = FakeProvider(scripted("at nine"))
    Gateway(first, cache_dir=tmp_path, config=config()).complete(ASK, schema={"type": "object"})
    again = FakeProvider(scripted("something else"))
    gateway = Gateway(again, cache_dir=tmp_path, config=config())
    assert gateway.complete(ASK, schema={"type": "object"}, purpose="qa") == "at nine"
    assert asyncio.run(gateway.acomplete(ASK, schema={"type": "object"}, purpose="qa")) == "at nine"
    assert again.calls == 0
    assert gateway.usage()["qa"] == {
        "calls": 2,
        "cache_hits": 2,
        "retries": 0,
        "failures": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cost_usd": 0,
    }


@pytest.mark.parametrize("change", [{"temperature": 0.7}, {"max_tokens": 100}, {"seed": 1}, "schema", "messages"])
def test_the_cache_key_covers_messages_params_and_schema(tmp_path, change):
    Gateway(FakeProvider(scripted("first")), cache_dir=tmp_path, config=config()).complete(ASK)
    provider = FakeProvider(scripted("second"))
    gateway = Gateway(provider, cache_dir=tmp_path, config=config(**change) if isinstance(change, dict) else config())
    messages = [ChatMessage(role="user", content="Another question?")] if change == "messages" else ASK
    schema = {"type": "object"} if change == "schema" else None
    assert gateway.complete(messages, schema=schema) == "second"
    assert provider.calls == 1


def test_failed_calls_are_not_cached(tmp_path):
    with pytest.raises(LLMError):
        Gateway(FakeProvider(scripted(PermanentError("bad request"))), cache_dir=tmp_path, config=config()).complete(ASK)
    with pytest.raises(LLMError):
        Gateway(FakeProvider(scripted("")), cache_dir=tmp_path, config=config(max_retries=0)).complete(ASK)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
    provider = FakeProvider(scripted("at nine"))
    assert Gateway(provider, cache_dir=tmp_path, config=config()).complete(ASK) == "at nine"
    assert provider.calls == 1


def test_a_corrupt_cache_file_is_a_miss(tmp_path):
    Gateway(FakeProvider(scripted("at nine")), cache_dir=tmp_path, config=config()).complete(ASK)
    (entry,) = [p for p in tmp_path.rglob("*.json")]
    entry.write_text('{"reply": "at ni', encoding="utf-8")  # a crash mid-write by some other tool
    provider = FakeProvider(scripted("at nine"))
    assert Gateway(provider, cache_dir=tmp_path, config=config()).complete(ASK) == "at nine"
    assert provider.calls == 1
    assert json.loads(entry.read_text(encoding="utf-8"))["reply"] == "at nine"


def test_usage_is_kept_per_purpose():
    provider = FakeProvider(scripted(TransientError("x"), "one two three", "four"))
    gateway = Gateway(provider, config=config())
    gateway.complete(ASK, purpose="QAWriter")
    gateway.complete([ChatMessage(role="user", content="judge this")], purpose="Judge")
    usage = gateway.usage()
    assert usage["QAWriter"] == {
        "calls": 1,
        "cache_hits": 0,
        "retries": 1,
        "failures": 0,
        "prompt_tokens": 10,
        "completion_tokens": 3,
        "cost_usd": pytest.approx(0.001),
    }
    assert usage["Judge"]["calls"] == 1 and usage["Judge"]["completion_tokens"] == 1


def test_agents_run_through_the_gateway():
    provider = FakeProvider(scripted(TransientError("x"), '{"answer": "at nine"}'))
    result = FakeAnswerAgent(Gateway(provider, config=config())).run("When?")
    assert (result.value.answer, result.tier) == ("at nine", Tier.structured)
    assert provider.requests[-1][1] == Answer.model_json_schema()


def test_a_provider_that_is_down_sends_agents_to_their_heuristic():
    provider = FakeProvider(scripted(PermanentError("unknown model")))
    result = asyncio.run(FakeAnswerAgent(Gateway(provider, config=config())).arun("When?"))
    assert result.tier is Tier.heuristic
    assert any("unknown model" in e for e in result.errors)
