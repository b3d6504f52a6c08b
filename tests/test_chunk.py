"""Chunks follow the document's structure, fit the budget, and are exact spans of its text."""

from __future__ import annotations

from docpipe.chunk import chunk_document
from docpipe.contracts import Document, ElementKind
from docpipe.ingest.extraction import Block, assemble


def words(text: str) -> int:
    """A stand-in tokenizer for sizing tests: one token per whitespace-separated word."""
    return len(text.split())


def _doc(blocks: list[Block]) -> Document:
    text, elements = assemble(blocks)
    return Document(path="guide.md", sha256="ab" * 32, size=len(text), format="md", status="ok", text=text, elements=elements)


def _sentences(n: int, topic: str) -> str:
    return " ".join(f"Sentence {i} about {topic} has seven words." for i in range(n))


GUIDE = _doc(
    [
        Block(ElementKind.title, "Guide", level=1, page=1),
        Block(ElementKind.text, "The guide explains the archive.", page=1),
        Block(ElementKind.title, "Opening hours", level=2, page=1),
        Block(ElementKind.text, "The reading room opens at nine.", page=1),
        Block(ElementKind.table, "day | open\nMon | 9\nTue | 9", page=2),
        Block(ElementKind.title, "Rules", level=2, page=2),
        Block(ElementKind.text, _sentences(30, "rules"), page=2),
        Block(ElementKind.table, "\n".join(f"row {i} | value {i}" for i in range(40)), page=3),
    ]
)


def test_chunks_are_exact_spans_with_provenance():
    chunks = chunk_document(GUIDE, words, max_tokens=50)
    for chunk in chunks:
        assert GUIDE.text[chunk.start : chunk.end] == chunk.text
        assert chunk.doc_id == GUIDE.doc_id and chunk.path == "guide.md"
        assert chunk.tokens == words(chunk.text)
    assert len({c.id for c in chunks}) == len(chunks)


def test_a_chunk_never_crosses_a_heading_and_titles_stay_with_their_text():
    chunks = chunk_document(GUIDE, words, max_tokens=1000)
    assert [c.section for c in chunks] == [["Guide"], ["Guide", "Opening hours"], ["Guide", "Rules"]]
    assert chunks[1].text.startswith("Opening hours")
    assert chunks[1].pages == [1, 2]
    assert not any(c.text in ("Guide", "Opening hours", "Rules") for c in chunks), "no heading-only chunk"


def test_long_paragraphs_are_cut_between_sentences_and_tables_between_rows():
    chunks = chunk_document(GUIDE, words, max_tokens=50)
    rules = [c for c in chunks if c.section == ["Guide", "Rules"]]
    prose = [c for c in rules if "Sentence" in c.text]
    assert len(prose) >= 4 and all(c.tokens <= 50 for c in prose)
    assert all(c.text.rstrip().endswith(".") for c in prose), "cuts fall after sentences"
    table = [c for c in rules if c.text.startswith("row ")]
    assert len(table) >= 2 and all(c.tokens <= 50 for c in table)
    rows = [line for c in table for line in c.text.split("\n")]
    assert rows == [f"row {i} | value {i}" for i in range(40)], "every row whole, in order, once"


def test_a_table_within_the_budget_is_never_cut():
    chunks = chunk_document(GUIDE, words, max_tokens=1000)
    assert any("day | open\nMon | 9\nTue | 9" in c.text for c in chunks)


def test_a_sentence_longer_than_the_budget_is_cut_between_words():
    doc = _doc([Block(ElementKind.text, " ".join(f"w{i}" for i in range(25)))])
    chunks = chunk_document(doc, words, max_tokens=10)
    assert [c.tokens for c in chunks] == [10, 10, 5]
    assert " ".join(c.text for c in chunks) == doc.text


def test_failed_documents_give_no_chunks():
    failed = Document(path="x.pdf", sha256="cd" * 32, size=0, format="pdf", status="failed", reason="empty file (0 bytes)")
    assert chunk_document(failed, words) == []
