"""What besides Q&A pairs the model trains on: its documents' text (rehearsal) and refusals."""

from docpipe.chunk import chunk_document
from docpipe.qa.curate import Source
from docpipe.qa.probes import OUT_OF_CORPUS
from docpipe.qa.refusals import refusal_bank, refusal_records
from docpipe.qa.rehearsal import rehearsal_records
from docpipe.runtime.chat_format import ABSTAIN_ANSWER, parse_source_reference
from docpipe.runtime.citation import content_words
from tests.qa.builders import document


def test_the_refusal_bank_is_kept_apart_from_the_evaluation_questions():
    bank = refusal_bank()
    assert len(bank) >= 100 and len(set(bank)) == len(bank)
    assert not set(bank) & set(OUT_OF_CORPUS)
    frames = lambda q: " ".join(q.lower().split()[:4])  # noqa: E731
    # no evaluation question shares its opening frame and half its content words with a trained one
    for probe in OUT_OF_CORPUS:
        for q in bank:
            assert not (frames(probe) == frames(q) and 2 * len(content_words(probe) & content_words(q)) >= len(content_words(probe))), (
                probe,
                q,
            )


def test_refusals_answer_the_abstention_and_skip_what_the_documents_might_answer():
    chunk_words = [content_words("Vietnam's national dish is pho, served with herbs.")]
    records = refusal_records(chunk_words, count=500)
    assert records and all(r.kind == "refusal" and r.answer == ABSTAIN_ANSWER for r in records)
    assert "What is the national dish of Vietnam?" not in [r.question for r in records]  # half its words are in a chunk
    assert all(r.messages[-1].content == ABSTAIN_ANSWER and parse_source_reference(r.messages[-1].content) is None for r in records)
    assert [r.question for r in refusal_records([], 5, seed=1)] == [r.question for r in refusal_records([], 5, seed=1)]


def test_rehearsal_trains_on_each_chunk_with_its_file_page_and_section():
    doc = document(
        "guide/handbook.pdf", [("Annual leave is 27 days for full-time staff.", 3), ("Sick leave needs a note from day four.", 4)]
    )
    chunks = chunk_document(doc, lambda text: len(text.split()), 8)
    records = rehearsal_records([Source(c, doc) for c in chunks])
    assert len(records) == len(chunks) and all(r.kind == "rehearsal" for r in records)
    first = records[0]
    assert first.question.startswith("What is written in handbook.pdf, page 3")
    assert first.answer == chunks[0].text.strip() and doc.text[first.citation.start : first.citation.end] == first.citation.quote
    assert parse_source_reference(first.messages[-1].content) == ("guide/handbook.pdf", 3)
