"""A Q&A pair as a training record, and in other tools' formats (Alpaca, ShareGPT); the prompt and
answer format itself is `docpipe.runtime.chat_format`, shared with evaluation, chat and export."""

from __future__ import annotations

from docpipe.contracts import QAPair, TrainingRecord
from docpipe.runtime.chat_format import render_answer, to_messages


def training_record(pair: QAPair, fact_id: str | None = None) -> TrainingRecord:
    """One line of train.jsonl / eval.jsonl: the pair, its citation and its chat-format example."""
    return TrainingRecord(**dict(pair), fact_id=fact_id, messages=to_messages(pair.question, render_answer(pair.answer, pair.citation)))


def to_alpaca(record: TrainingRecord) -> dict[str, str]:
    """Alpaca's instruction/input/output triple (the system prompt travels as `system`)."""
    system, user, assistant = (m.content for m in record.messages)
    return {"instruction": user, "input": "", "output": assistant, "system": system}


def to_sharegpt(record: TrainingRecord) -> dict[str, list[dict[str, str]]]:
    """ShareGPT's conversations list with from/value keys."""
    speaker = {"system": "system", "user": "human", "assistant": "gpt"}
    return {"conversations": [{"from": speaker[m.role], "value": m.content} for m in record.messages]}
