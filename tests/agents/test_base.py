"""The agent ladder: structured output, repaired JSON with feedback, then the heuristic."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import BaseModel, ValidationInfo, field_validator

from docpipe.agents.base import BaseAgent, Tier
from docpipe.llm.client import LLMError
from tests.agents.fake_llm import FakeLLM

SOURCE = "The archive opens at nine and closes at five on weekdays."


class Quoted(BaseModel):
    answer: str
    quote: str

    @field_validator("quote")
    @classmethod
    def quote_is_in_the_source(cls, quote: str, info: ValidationInfo) -> str:
        # Without a context (an object built in code) there is nothing to check against; the
        # agent always validates again with the context.
        if info.context is not None and quote not in info.context["source"]:
            raise ValueError("quote is not in the source text")
        return quote


class FakeQuoteAgent(BaseAgent[str, Quoted]):
    response_model = Quoted
    system_prompt = "Answer with a quote from the source."

    def build_prompt(self, item: str) -> str:
        return f"Source: {item}\nWhen does the archive open?"

    def heuristic(self, item: str) -> Quoted:
        first = item.split(" and ")[0]
        return Quoted(answer=first, quote=first)

    def validation_context(self, item: str) -> dict:
        return {"source": item}


GOOD = json.dumps({"answer": "At nine.", "quote": "opens at nine"})


def test_structured_output_answers_first():
    llm = FakeLLM(lambda m, schema, n: GOOD)
    result = FakeQuoteAgent(llm).run(SOURCE)
    assert (result.tier, result.calls, result.value.answer) == (Tier.structured, 1, "At nine.")
    assert llm.requests[0][1]["title"] == "Quoted", "tier 1 passes the response model's JSON schema"


def test_fenced_json_after_a_bad_structured_reply_is_tier_two():
    replies = {1: "not json at all", 2: f"<think>hmm</think>```json\n{GOOD}\n```"}
    result = FakeQuoteAgent(FakeLLM(lambda m, s, n: replies[n])).run(SOURCE)
    assert (result.tier, result.calls) == (Tier.json, 2)
    assert result.errors == ["structured: the reply holds no JSON object"]


def test_validation_error_is_fed_back_and_the_fix_is_accepted():
    bad = json.dumps({"answer": "At ten.", "quote": "opens at ten"})  # a quote the source does not have
    llm = FakeLLM(lambda m, s, n: bad if n == 1 else GOOD, supports_schema=False)
    result = FakeQuoteAgent(llm).run(SOURCE)
    assert (result.tier, result.calls) == (Tier.json, 2)
    retry = llm.requests[1][0]
    assert retry[-2].content == bad and retry[-2].role == "assistant"
    assert "quote is not in the source text" in retry[-1].content


def test_a_model_that_never_complies_ends_in_the_heuristic():
    llm = FakeLLM(lambda m, s, n: '{"answer": "x"}')
    result = FakeQuoteAgent(llm).run(SOURCE)
    assert result.tier == Tier.heuristic
    assert result.calls == 1 + 1 + FakeQuoteAgent.max_retries
    assert result.value.quote in SOURCE
    assert all("quote: Field required" in e for e in result.errors)


def test_a_provider_that_is_down_is_not_hammered():
    llm = FakeLLM(lambda m, s, n: LLMError("connection refused"))
    result = FakeQuoteAgent(llm).run(SOURCE)
    assert (result.tier, result.calls) == (Tier.heuristic, 2)
    assert result.errors == ["structured: provider failed: connection refused", "json: provider failed: connection refused"]


def test_no_model_at_all_still_gives_a_validated_value():
    result = FakeQuoteAgent(None).run(SOURCE)
    assert (result.tier, result.calls) == (Tier.heuristic, 0)
    assert result.value == Quoted(answer="The archive opens at nine", quote="The archive opens at nine")


def test_a_heuristic_that_breaks_the_validators_is_a_bug_not_a_result():
    class BrokenAgent(FakeQuoteAgent):
        def heuristic(self, item: str) -> Quoted:
            return Quoted.model_construct(answer="x", quote="not in the source")

    with pytest.raises(ValueError, match="quote is not in the source"):
        BrokenAgent(None).run(SOURCE)


def test_async_mirror_runs_many_at_once_and_keeps_order():
    sources = [f"Item {i} opens at nine and closes at five." for i in range(10)]

    def reply(messages, schema, n):
        item = messages[1].content.split("\n")[0].removeprefix("Source: ")
        return json.dumps({"answer": item[:6], "quote": item[:6]})

    llm = FakeLLM(reply, delay=0.05)
    results = asyncio.run(FakeQuoteAgent(llm).arun_many(sources, concurrency=4))
    assert [r.value.answer for r in results] == [s[:6] for s in sources]
    assert all(r.tier == Tier.structured for r in results)
    assert llm.max_in_flight == 4
