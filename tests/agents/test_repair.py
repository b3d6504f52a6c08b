"""The JSON inside a chat model's reply, whatever it wrapped it in."""

from __future__ import annotations

import pytest

from docpipe.agents.repair import extract_json


@pytest.mark.parametrize(
    "reply",
    [
        '{"answer": "Paris"}',
        '```json\n{"answer": "Paris"}\n```',
        '```\n{"answer": "Paris"}\n```',
        '<think>The user wants {a capital}. Easy.</think>\n{"answer": "Paris"}',
        'Sure! Here is the JSON:\n{"answer": "Paris"}\nLet me know if you need more.',
    ],
)
def test_json_is_recovered(reply):
    assert extract_json(reply) == {"answer": "Paris"}


def test_json_inside_an_unfinished_think_block_is_not_taken_for_the_answer():
    # A reply cut off while the model was still thinking has no answer yet.
    with pytest.raises(ValueError):
        extract_json('<think>maybe {"answer": "Lyon"}? let me check')


def test_a_brace_in_prose_before_the_json_is_skipped():
    assert extract_json('Use {curly} braces. {"answer": 1}') == {"answer": 1}


@pytest.mark.parametrize("reply, message", [("", "empty"), ("no json here", "no JSON"), ("{broken", "no JSON")])
def test_no_json_is_a_clear_error(reply, message):
    with pytest.raises(ValueError, match=message):
        extract_json(reply)
