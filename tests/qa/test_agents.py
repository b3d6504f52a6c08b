import json

from docpipe.agents.base import Tier
from docpipe.contracts import Chunk
from docpipe.llm.local_provider import grammar_friendly
from docpipe.qa.agents import ChunkTask, QAWriter
from tests.agents.fake_llm import FakeLLM

TEXT = "The Alder Reading Room opens at 8:30 on weekdays. Borrowers may keep short loan books for 48 hours.\nRoom | Floor\nAlder | 2"
CHUNK = Chunk(id="c", doc_id="d", path="rules.md", text=TEXT, start=0, end=len(TEXT), tokens=30)


def test_the_tier_1_schema_offers_only_the_passages_own_sentences_as_quotes():
    schema = QAWriter().schema(ChunkTask(CHUNK, 2))
    options = schema["$defs"]["DraftPair"]["properties"]["quote"]["enum"]
    assert options and all(option in TEXT for option in options)
    assert "Room | Floor" in options
    assert schema["properties"]["pairs"]["maxItems"] == 2


def test_llama_grammars_keep_short_string_bounds_and_drop_long_ones():
    schema = QAWriter().schema(ChunkTask(CHUNK, 2))
    friendly = grammar_friendly(schema)["$defs"]["DraftPair"]["properties"]
    assert friendly["question"]["maxLength"] == 200 and "maxLength" not in grammar_friendly({"type": "string", "maxLength": 1500})


def test_a_reply_that_quotes_nothing_from_the_passage_is_retried_then_replaced():
    invented = json.dumps(
        {"pairs": [{"question": "What is the admin password?", "answer": "swordfish", "quote": "the password is swordfish"}]}
    )
    llm = FakeLLM(lambda m, s, n: invented)
    result = QAWriter(llm).run(ChunkTask(CHUNK, 2))
    assert result.tier == Tier.heuristic and result.calls == 4
    assert "no quote is copied" in result.errors[0] and "no quote is copied" in llm.requests[2][0][-1].content  # fed back on the retry
    assert all(pair.quote in TEXT for pair in result.value.pairs)
