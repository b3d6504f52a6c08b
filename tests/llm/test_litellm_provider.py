"""The litellm path end to end, against a local OpenAI-compatible server that fails on cue."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from docpipe.agents.base import Tier
from docpipe.config import LLMConfig
from docpipe.llm import open_llm
from docpipe.llm.client import ChatMessage, LLMError
from tests.agents.fake_agent import FakeAnswerAgent
from tests.llm.fake_openai_server import FakeOpenAIServer, Scripted, hang, ok, rate_limited, server_error

pytest.importorskip("litellm", reason="the API provider needs litellm: pip install 'docpipe[api]'")

API_KEY = "sk-docpipe-test-0123456789abcdef"
ASK = [ChatMessage(role="user", content="When does the archive open?")]


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)


def gateway_for(server: FakeOpenAIServer, cache_dir=None, **overrides):
    cfg = LLMConfig(
        **{
            "model": "openai/fake-model",
            "api_base": server.base_url,
            "backoff_s": 0.01,
            "backoff_max_s": 0.05,
            "max_retries": 2,
            "timeout_s": 5.0,
            **overrides,
        }
    )
    return open_llm(cfg, cache_dir)


def scripted(*answers: Scripted):
    return lambda body, n: answers[min(n, len(answers)) - 1]


def test_a_reply_and_its_usage(tmp_path):
    with FakeOpenAIServer(scripted(ok('{"answer": "at nine"}'))) as server:
        gateway = gateway_for(server, tmp_path)
        assert gateway.complete(ASK, schema={"title": "Answer", "type": "object"}, purpose="qa") == '{"answer": "at nine"}'
    sent = server.requests[0]
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"] == {"title": "Answer", "type": "object"}
    assert (sent["temperature"], sent["max_tokens"], sent["seed"]) == (0.2, 768, 0)
    usage = gateway.usage()["qa"]
    assert (usage["calls"], usage["prompt_tokens"], usage["completion_tokens"]) == (1, 5, 3)


def test_the_api_key_is_sent_but_never_written(tmp_path):
    with FakeOpenAIServer(scripted(ok("at nine"))) as server:
        gateway = gateway_for(server, tmp_path)
        gateway.complete(ASK)
        asyncio.run(gateway.acomplete([ChatMessage(role="user", content="And when does it close?")]))
    assert server.authorizations == [f"Bearer {API_KEY}"] * 2
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 2
    for path in files:
        assert API_KEY not in path.read_text(encoding="utf-8")
        assert server.base_url not in path.read_text(encoding="utf-8")


def test_a_rerun_makes_no_request(tmp_path):
    with FakeOpenAIServer(scripted(ok("at nine"))) as server:
        gateway_for(server, tmp_path).complete(ASK)
        assert gateway_for(server, tmp_path).complete(ASK) == "at nine"
    assert server.count == 1


def test_empty_text_is_retried():
    with FakeOpenAIServer(scripted(ok(""), ok("at nine"))) as server:
        assert gateway_for(server).complete(ASK) == "at nine"
    assert server.count == 2


def test_a_429_waits_for_its_retry_after():
    with FakeOpenAIServer(scripted(rate_limited(1), ok("at nine"))) as server:
        started = time.monotonic()
        assert gateway_for(server).complete(ASK) == "at nine"
        assert time.monotonic() - started >= 1.0
    assert server.count == 2


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried(status):
    with FakeOpenAIServer(scripted(server_error(status), ok("at nine"))) as server:
        assert gateway_for(server).complete(ASK) == "at nine"
    assert server.count == 2


@pytest.mark.parametrize("status", [400, 401, 404])
def test_client_errors_are_not_retried(status):
    with FakeOpenAIServer(scripted(server_error(status))) as server:
        gateway = gateway_for(server)
        with pytest.raises(LLMError) as error:
            gateway.complete(ASK, purpose="qa")
    assert server.count == 1
    assert "\n" not in str(error.value)
    assert gateway.usage()["qa"]["failures"] == 1


def test_persistent_server_errors_end_in_llm_error():
    with FakeOpenAIServer(scripted(server_error(500))) as server:
        with pytest.raises(LLMError, match="fake-model"):
            gateway_for(server).complete(ASK)
    assert server.count == 3  # max_retries=2


def test_a_hung_server_times_out_and_is_retried():
    with FakeOpenAIServer(scripted(hang(5), ok("at nine"))) as server:
        assert gateway_for(server, timeout_s=0.5).complete(ASK) == "at nine"
    assert server.count == 2  # the hung request was abandoned at its deadline and retried


def test_acomplete_against_the_server():
    replies = scripted(rate_limited(0.2), server_error(503), *[ok("at nine")] * 8)
    with FakeOpenAIServer(replies) as server:
        gateway = gateway_for(server, concurrency=3, max_retries=3)

        async def main():
            asks = [[ChatMessage(role="user", content=f"question {n}")] for n in range(6)]
            return await asyncio.gather(*(gateway.acomplete(a, purpose="qa") for a in asks))

        assert asyncio.run(main()) == ["at nine"] * 6
    assert server.count == 8
    assert gateway.usage()["qa"]["retries"] == 2


def test_acomplete_times_out():
    with FakeOpenAIServer(scripted(hang(5))) as server:
        with pytest.raises(LLMError):
            asyncio.run(gateway_for(server, timeout_s=0.3, max_retries=1).acomplete(ASK))
    assert server.count == 2


@pytest.mark.parametrize(
    "reply",
    [
        '```json\n{"answer": "at nine"}\n```',
        '<think>The passage says nine.</think>\n{"answer": "at nine"}',
        'Sure! Here it is: {"answer": "at nine"}',
    ],
)
def test_chatty_replies_reach_the_agent_unchanged(reply):
    # The gateway passes text through; repairing it is the agent's job (docpipe/agents/repair.py).
    with FakeOpenAIServer(scripted(ok(reply))) as server:
        result = FakeAnswerAgent(gateway_for(server)).run("When does the archive open?")
    assert (result.value.answer, result.tier) == ("at nine", Tier.structured)


def test_retry_after_in_seconds_or_as_a_date():
    from docpipe.llm.litellm_provider import _seconds  # needs litellm, which may be absent at collection

    assert _seconds("2") == 2.0
    assert 25 < _seconds(format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)) <= 30
    assert _seconds("soon") is None
