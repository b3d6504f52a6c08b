"""A Q&A pair as a training record, and in other tools' formats (Alpaca, ShareGPT); the prompt and
answer format itself is `docpipe.runtime.chat_format`, shared with evaluation, chat and export."""

from __future__ import annotations

from typing import Any

from docpipe.contracts import QAPair
from docpipe.runtime.chat_format import render_answer, to_messages


def training_record(pair: QAPair) -> dict[str, Any]:
    """One line of train.jsonl / eval.jsonl: the pair, its citation and its chat-format example."""
    record = pair.model_dump(mode="json")
    record["messages"] = to_messages(pair.question, render_answer(pair.answer, pair.citation))
    return record


def to_alpaca(record: dict[str, Any]) -> dict[str, str]:
    """Alpaca's instruction/input/output triple (the system prompt travels as `system`)."""
    system, user, assistant = (m["content"] for m in record["messages"])
    return {"instruction": user, "input": "", "output": assistant, "system": system}


def to_sharegpt(record: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    """ShareGPT's conversations list with from/value keys."""
    speaker = {"system": "system", "user": "human", "assistant": "gpt"}
    return {"conversations": [{"from": speaker[m["role"]], "value": m["content"]} for m in record["messages"]]}
