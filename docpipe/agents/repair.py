"""Dig the JSON out of what a chat model actually said: fences, <think> blocks, chatter around it."""

from __future__ import annotations

import json
import re
from typing import Any

_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


def extract_json(reply: str) -> Any:
    """The first JSON object or array in `reply`; ValueError when there is none."""
    text = _THINK.sub("", reply)
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1)
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[{\[]", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())  # stops at the end of the value: trailing text is ignored
            return value
        except json.JSONDecodeError:
            continue
    raise ValueError("the reply holds no JSON object" if text.strip() else "the reply is empty")
