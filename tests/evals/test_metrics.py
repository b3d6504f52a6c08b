"""The per-answer measures, each on cases worked out by hand."""

from __future__ import annotations

import hashlib

import pytest

from docpipe.config import EvalConfig
from docpipe.contracts import DocStatus, Document, Element, ElementKind, EvalQuestion
from docpipe.runtime.chat_format import ABSTAIN_ANSWER
from docpipe.runtime.citation import support
from evals.metrics import (
    Corpus,
    TrainingAnswers,
    abstained,
    answer_body,
    citation_exists,
    citation_right_document,
    citation_supports,
    expects_abstention,
    key_facts,
    regurgitation,
    score_answer,
    token_f1,
)

FILLER = " ".join(f"filler{i}" for i in range(400))  # 400 words that share nothing with any answer


def _document(path: str, pages: list[str | tuple[str, int | None]], status: DocStatus = DocStatus.ok) -> Document:
    """A document whose elements are the given paragraphs, on pages 1, 2, ... (or the page given with each)."""
    text, elements = "", []
    for number, item in enumerate(pages, 1):
        body, page = item if isinstance(item, tuple) else (item, number)
        text += "\n\n" if text else ""
        elements.append(Element(kind=ElementKind.text, text=body, start=len(text), end=len(text) + len(body), page=page))
        text += body
    sha = hashlib.sha256(text.encode()).hexdigest()
    return Document(path=path, sha256=sha, size=len(text), format="pdf", status=status, text=text, elements=elements)


def _question(
    set_: str = "unseen", reference: str = "The late fee is 5 euros per day.", path: str | None = "fees.pdf", **extra
) -> EvalQuestion:
    return EvalQuestion(id=f"q-{set_}", set=set_, question="How much is the late fee?", reference=reference, path=path, **extra)


@pytest.fixture
def corpus() -> Corpus:
    return Corpus.from_documents(
        [
            _document("fees.pdf", ["Opening hours are nine to five.", "The late fee is 5 euros per day of delay."]),
            _document("notes.txt", [("Plain notes without pages.", None)]),
            _document("long.pdf", [f"The museum {FILLER} opened {FILLER} in 1987. Entry is free on Sundays."]),
            _document("broken.pdf", [], status=DocStatus.failed),
        ]
    )


# --- the answer's text -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "body"),
    [
        ("The fee is 5 euros.\n\nSource: fees.pdf, p. 2", "The fee is 5 euros."),
        ("The fee is 5 euros. Source: fees.pdf", "The fee is 5 euros."),
        ("Line one.\nLine two.\nSource: notes.txt", "Line one.\nLine two."),
        ("  No source here.  ", "No source here."),
        ("Source: fees.pdf, p. 2", ""),
    ],
)
def test_answer_body_drops_only_the_trailing_source_line(reply, body):
    assert answer_body(reply) == body


def test_token_f1_is_squads():
    # tokens without articles and punctuation: [cat, sat] against [cat, sat, on, mat]: P = 1, R = 1/2, F1 = 2/3
    assert token_f1("The cat sat.", "a cat sat on the mat") == pytest.approx(2 / 3)
    assert token_f1("Paris!", "paris") == 1.0
    assert token_f1("dog dog", "dog") == pytest.approx(2 / 3)  # a bag: one 'dog' in common, P = 1/2, R = 1
    assert token_f1("Berlin", "Paris") == 0.0
    assert token_f1("", "") == 1.0
    assert token_f1("the", "Paris") == 0.0  # nothing left of the answer


def test_key_facts_counts_content_words_and_numbers_as_written():
    reference = "The museum opened in 1987 and costs 2.5 euros."  # facts: museum, open, 1987, cost, 2.5, euro
    assert key_facts("It opened in 1987.", reference) == pytest.approx(2 / 6)
    assert key_facts("The museum opens in 1987; it costs 2.5 euros.", reference) == 1.0
    assert key_facts("Museum, opened 1987, costs 2 or 5 euros.", reference) == pytest.approx(5 / 6)  # '2 or 5' is not 2.5
    assert key_facts("It costs 2.50 euros.", "It costs 2.5 euros.") == pytest.approx(2 / 3)  # cost, euro; 2.50 is not 2.5 as written
    assert key_facts("About 1,000 visitors.", "1000 visitors") == 1.0  # a thousands separator is not a different number
    assert key_facts("", reference) == 0.0


def test_key_facts_of_a_reference_without_content_words_uses_its_plain_words():
    assert key_facts("Yes, it does.", "Yes.") == 1.0
    assert key_facts("No.", "Yes.") == 0.0
    assert key_facts("anything", "") == 1.0  # nothing to find


@pytest.mark.parametrize(
    "reply",
    [
        ABSTAIN_ANSWER,
        "The documents don\u2019t say.",
        "the documents do not say",
        "Not in the documents.",
        "That is not mentioned in the documents.",
        "It's not in the provided documents.",
        "The document does not say what the fee is.",
        "The documents make no mention of it.",
        "I can't find this in the documents.",
        "The documents do not say.\n\nSource: fees.pdf, p. 1",
    ],
)
def test_abstentions_are_recognised(reply):
    assert abstained(reply)


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "Yes.",
        "The documents say the fee is 5 euros.",
        "The warranty does not cover water damage.",
        "The fee is not in euros but in dollars.",
        "The documents do not say much about fees, but the fee is 5 euros.",
        "According to the documents, the fee is 5 euros.",
    ],
)
def test_answers_are_not_abstentions(reply):
    assert not abstained(reply)


def test_expects_abstention():
    assert expects_abstention(_question("out_of_corpus", reference=ABSTAIN_ANSWER, path=None))
    assert expects_abstention(_question("user", reference="Not in the documents."))
    assert not expects_abstention(_question("user"))


# --- citations ---------------------------------------------------------------------------------------------------


def test_corpus_keeps_readable_documents_and_their_page_counts(corpus):
    assert set(corpus.documents) == {"fees.pdf", "notes.txt", "long.pdf"}  # the failed file taught nothing
    assert corpus.documents["fees.pdf"].pages == 2
    assert corpus.documents["notes.txt"].pages is None


@pytest.mark.parametrize(
    ("path", "page", "exists"),
    [
        ("fees.pdf", 2, True),
        ("fees.pdf", None, True),
        ("fees.pdf", 3, False),  # past the last page
        ("fees.pdf", 0, False),
        ("notes.txt", 4, True),  # no pages known: only the file is checked
        ("made-up.pdf", 1, False),
        ("broken.pdf", None, False),
    ],
)
def test_citation_exists(corpus, path, page, exists):
    assert citation_exists(path, page, corpus) is exists


def test_citation_right_document():
    assert citation_right_document("fees.pdf", _question()) is True
    assert citation_right_document("notes.txt", _question()) is False
    assert citation_right_document("fees.pdf", _question(path=None)) is None


def test_citation_supports_needs_one_passage_to_hold_the_answer(corpus):
    assert citation_supports("The late fee is 5 euros a day.", "fees.pdf", corpus)  # late, fee, 5, euro, day: all there
    assert not citation_supports("The museum sells postcards and coffee.", "fees.pdf", corpus)
    assert not citation_supports("The late fee is 5 euros.", "made-up.pdf", corpus)
    # museum, open, 1987 are all in long.pdf (its whole text supports the answer), but 400 words apart: no passage does
    assert support("The museum opened in 1987.", corpus.documents["long.pdf"].text) == 1.0
    assert not citation_supports("The museum opened in 1987.", "long.pdf", corpus)
    assert citation_supports("Entry is free on Sundays.", "long.pdf", corpus)


# --- copying another question's training answer ------------------------------------------------------------------

TRAINING = {
    "p-fee": ("How much is the late fee?", "The late fee for a book is five euros for every day of delay.\n\nSource: fees.pdf, p. 2"),
    "p-hours": ("When does the library open?", "The library opens at nine in the morning on every weekday.\n\nSource: fees.pdf, p. 1"),
    "p-none": ("Who founded it?", ABSTAIN_ANSWER),
}


def test_regurgitation_finds_a_copied_answer_of_another_question():
    index = TrainingAnswers(TRAINING, n=8)
    copy = "The library opens at nine in the morning on every weekday, they say."
    assert regurgitation(copy, index, source_id="p-fee", question="How much is the late fee?") == "p-hours"


def test_regurgitation_is_not_the_question_s_own_answer_nor_a_short_overlap():
    index = TrainingAnswers(TRAINING, n=8)
    own = "The late fee for a book is five euros for every day of delay."
    assert regurgitation(own, index, source_id="p-fee") is None  # its own training pair
    assert regurgitation(own, index, question="how much is the LATE fee") is None  # the same question, another pair
    # another question with the same answer (a fact two pairs state alike): its reference shares the run
    assert regurgitation(own, index, reference="The late fee for a book is five euros for every day of delay") is None
    # seven words in a row from p-hours ("the library opens at nine in the") are fewer than eight
    assert regurgitation("Yes: the library opens at nine in the evening.", index) is None


def test_regurgitation_ignores_abstentions_and_source_lines():
    index = TrainingAnswers(TRAINING, n=3)
    assert regurgitation(ABSTAIN_ANSWER, index) is None  # every abstention looks alike
    # only the source line ("Source: fees.pdf, p. 1") is shared with p-hours
    assert regurgitation("Closed.\n\nSource: fees.pdf, p. 1", index) is None


def test_regurgitation_index_of_thousands_of_answers():
    answers = {f"p{i}": (f"Question {i}?", f"Answer number {i} says the value of item {i} is {i * 7} units.") for i in range(5000)}
    index = TrainingAnswers(answers, n=8)
    assert regurgitation("Answer number 4321 says the value of item 4321 is 30247 units.", index, source_id="p1") == "p4321"


# --- one answer, scored ------------------------------------------------------------------------------------------


def test_score_answer_of_a_cited_correct_answer(corpus):
    score = score_answer(_question(), "The late fee is 5 euros per day.\n\nSource: fees.pdf, p. 2", corpus, EvalConfig())
    assert (score.f1, score.key_facts, score.correct, score.abstained) == (1.0, 1.0, True, False)
    assert (score.cited, score.cited_path, score.cited_page) == (True, "fees.pdf", 2)
    assert (score.citation_exists, score.citation_right_document, score.citation_supports) == (True, True, True)
    assert score.regurgitated is None and score.judge is None


def test_score_answer_below_the_key_facts_threshold_is_wrong(corpus):
    # facts of the reference: late, fee, 5, euro, per, day; the answer has fee and 5: 2/6 < 0.5
    score = score_answer(_question(), "A fee of 5.", corpus, EvalConfig())
    assert score.key_facts == pytest.approx(2 / 6) and not score.correct
    assert not score.cited and score.citation_exists is None and score.citation_supports is None
    assert score_answer(_question(), "A fee of 5.", corpus, EvalConfig(correct_key_facts=0.3)).correct


def test_score_answer_of_an_abstention(corpus):
    answerable = score_answer(_question(), ABSTAIN_ANSWER, corpus, EvalConfig())
    assert answerable.abstained and not answerable.correct
    out_of_corpus = _question("out_of_corpus", reference=ABSTAIN_ANSWER, path=None)
    assert score_answer(out_of_corpus, "The documents don't say.", corpus, EvalConfig()).correct
    invented = score_answer(out_of_corpus, "It was founded in 1850.\n\nSource: made-up.pdf, p. 4", corpus, EvalConfig())
    assert not invented.correct and invented.citation_exists is False and invented.citation_right_document is None


def test_score_answer_flags_a_copy_when_given_the_training_answers(corpus):
    copy = "The library opens at nine in the morning on every weekday."
    question = _question(source_id="p-fee")
    assert score_answer(question, copy, corpus, EvalConfig(), TrainingAnswers(TRAINING, n=8)).regurgitated == "p-hours"
    assert score_answer(question, copy, corpus, EvalConfig()).regurgitated is None
