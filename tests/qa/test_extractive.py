"""The built-in generator: each rule on a hand-written chunk, the invariants on real corpus files,
the path without spaCy, and paraphrases that reword without changing the question."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from docpipe.chunk import chunk_document
from docpipe.config import IngestConfig
from docpipe.contracts import Chunk, Document
from docpipe.qa.extractive import (
    RuleDraft,
    extractive_pairs,
    information_units,
    pairs,
    paraphrase,
)
from docpipe.qa.extractive.parse import _nlp
from docpipe.qa.extractive.rewording import MAX_JACCARD, _jaccard
from docpipe.runtime.citation import content_words, normalize, support
from docpipe.store import iter_jsonl
from tests.stages import ingest_folder

REPO = Path(__file__).resolve().parents[2]
HAS_SPACY = _nlp() is not None
# Files of the shared corpus read by fast engines: prose with an infobox, a table, markdown lists,
# a memo full of numbers, an email, YAML data.
CORPUS_FILES = [
    "txt/norwich-city.txt",
    "csv/stanley-cups.csv",
    "md/README.md",
    "pdf/fake-memo.pdf",
    "eml/fake-email.eml",
    "yaml/simple.yaml",
]


def _chunk(text: str, section: list[str] | None = None, path: str = "notes/library.md") -> Chunk:
    return Chunk(
        id="c1", doc_id="d1", path=path, text=text, start=0, end=len(text), pages=[1], section=section or [], tokens=len(text.split())
    )


def _count(text: str) -> int:
    return len(re.findall(r"\w+|[^\w\s]", text))


def _check(draft: RuleDraft, chunk: Chunk) -> None:
    """What every pair promises, whichever rule made it."""
    assert chunk.text.find(draft.quote) >= 0, draft
    assert support(draft.answer, draft.quote) >= 0.6, draft
    assert draft.question.endswith("?") and 12 <= len(draft.question) <= 300, draft
    assert normalize(draft.answer) not in normalize(draft.question), draft
    assert content_words(draft.answer) - content_words(draft.question), draft  # the answer says something new


def _pairs(chunk: Chunk, limit: int = 8) -> list[RuleDraft]:
    drafts = extractive_pairs(chunk, limit)
    for draft in drafts:
        _check(draft, chunk)
    return drafts


@pytest.fixture(params=["spacy", "regex"])
def parse(request, monkeypatch):
    """Run a test with spaCy's parse and again with the regular expressions alone."""
    if request.param == "spacy" and not HAS_SPACY:
        pytest.skip("spaCy or its English model is not installed")
    if request.param == "regex":
        monkeypatch.setattr(pairs, "_nlp", lambda: None)  # where extractive_pairs looks it up
    return request.param


def test_definition(parse):
    chunk = _chunk("A lobule is a small gland in the breast that makes milk. The ducts carry the milk to the nipple.")
    drafts = _pairs(chunk)
    definition = next(d for d in drafts if d.kind == "definition")
    assert definition.question == "What is a lobule?"
    assert "gland" in definition.answer and definition.quote == "A lobule is a small gland in the breast that makes milk."


def test_description_is_not_a_definition(parse):
    drafts = _pairs(_chunk("The balance is unsteady when the skater leans forward on the blade."))
    assert not [d for d in drafts if d.kind == "definition"]


def test_term_and_gloss_lines(parse):
    chunk = _chunk(
        "Example Docs\n\nexample-10k.html - A 10-K SEC filing in HTML format\n\n"
        "layout-parser-paper.pdf - A PDF copy of the layout parser paper",
        ["Example Docs"],
    )
    questions = {d.question for d in _pairs(chunk)}
    assert "What is example-10k.html?" in questions


def test_table_rows_are_asked_by_column_and_row_key(parse):
    text = "Stanley Cups\nTeam | Location | Stanley Cups\nBlues | STL | 1\nFlyers | PHI | 2\nMaple Leafs | TOR | 13"
    drafts = [d for d in _pairs(_chunk(text, ["Stanley Cups"], "sheets/cups.csv"), 10) if d.kind == "table_row"]
    assert len(drafts) >= 3
    by_question = {d.question: d for d in drafts}
    location = by_question['What is the Location of Blues in the "Stanley Cups" table?']
    assert "STL" in location.answer and location.quote == "Blues | STL | 1"
    cups = next(d for d in drafts if d.question.startswith("How many Stanley Cups does Maple Leafs have"))
    assert "13" in cups.answer and cups.quote == "Maple Leafs | TOR | 13"


def test_table_continued_from_the_previous_chunk_has_no_header(parse):
    """The rows of a table cut by the chunker come without their header: no row is taken for one."""
    chunk = _chunk("Flyers | PHI | 2\nMaple Leafs | TOR | 13\nBruins | BOS | 6", ["Stanley Cups"], "sheets/cups.csv")
    assert not [d for d in extractive_pairs(chunk, 5) if d.kind == "table_row"]


def test_bulleted_list_under_its_intro(parse):
    chunk = _chunk(
        "This is a test email to use for unit tests.\n\nImportant points:\n\n- Roses are red\n- Violets are blue",
        path="mail/fake-email.eml",
    )
    listed = next(d for d in _pairs(chunk) if d.kind == "list")
    assert listed.question == 'What are the important points listed in the email "fake-email.eml"?'
    assert "Roses are red" in listed.answer and "Violets are blue" in listed.answer


def test_short_lines_under_a_heading_are_a_list(parse):
    text = "Adding a Bullet Slide\n\nFind the bullet slide layout\n\nUse the text frame for the first bullet\n\nAdd a paragraph"
    listed = next(d for d in _pairs(_chunk(text, ["Adding a Bullet Slide"])) if d.kind == "list")
    assert listed.question == 'What items are listed under "Adding a Bullet Slide"?'
    assert listed.answer.startswith("Find the bullet slide layout; Use the text frame")


def test_list_intro_with_a_verb_becomes_the_question(parse):
    text = "The sample folder contains the following files:\n\n- report.html\n- paper.pdf\n- factbook.xml"
    listed = next(d for d in _pairs(_chunk(text)) if d.kind == "list")
    assert listed.question == "Which files does the sample folder contain?"


def test_heading_with_its_first_sentence(parse):
    text = "Opening hours\n\nThe reading room of the city library opens at nine every weekday morning."
    heading = next(d for d in _pairs(_chunk(text, ["Opening hours"])) if d.kind == "heading")
    assert '"Opening hours"' in heading.question
    assert heading.quote == "The reading room of the city library opens at nine every weekday morning."


def test_dates_and_counts(parse):
    text = "The Norwich library was founded in 1902 by the city council. About 120 volunteers help in the reading rooms each year."
    questions = [d.question for d in _pairs(_chunk(text)) if d.kind == "number"]
    assert "When was the Norwich library founded?" in [q.split(",")[0].rstrip("?") + "?" for q in questions]
    if parse == "spacy":
        assert any(q.startswith("How many volunteers help in the reading rooms") for q in questions)


def test_subject_verb_object(parse):
    if parse == "regex":
        pytest.skip("subject-verb-object questions need the parse")
    text = "Belarusian President Alexander Lukashenko ordered a snap readiness check of the military on Tuesday."
    questions = {d.question for d in _pairs(_chunk(text)) if d.kind == "svo"}
    assert "What did Belarusian President Alexander Lukashenko order on Tuesday?" in questions
    assert any(q.startswith("Who ordered a snap readiness check") for q in questions)


def test_email_header_fields(parse):
    text = 'Subject: Test Email\nFrom: "Matthew Robinson" <mrobinson@example.io>\n\nThis is a test email to use for unit tests.'
    fields = {d.question: d for d in _pairs(_chunk(text, path="mail/fake-email.eml")) if d.kind == "field"}
    subject = fields['What is the subject of the email "fake-email.eml"?']
    assert "Test Email" in subject.answer and subject.quote == "Subject: Test Email"
    assert 'Who sent the email "fake-email.eml"?' in fields


def test_heading_over_a_short_value(parse):
    """An XML element as ingested: its name is the heading, its text the value."""
    chunk = _chunk("capital\n\nOttawa", ["factbook", "country", "capital"], "data/factbook.xml")
    [draft] = _pairs(chunk)
    assert draft.question == 'What is the country capital given in the document "factbook.xml"?' and "Ottawa" in draft.answer


def test_table_of_contents_lines(parse):
    text = "Contents\n\nSurgery ........................ 28\nRadiotherapy .................. 35\n...............9"
    drafts = _pairs(_chunk(text, ["Contents"], "pdf/guide.pdf"))
    assert drafts[0].question == 'On which page does "Surgery" start in the section "Contents"?'
    assert "28" in drafts[0].answer and drafts[0].quote.startswith("Surgery ....")


def test_language_label_over_its_text(parse):
    text = "Papiamentu\nTur ser humano ta nace liber y igual den dignidad y den derecho."
    drafts = _pairs(_chunk(text, path="txt/udhr.txt"))
    assert drafts[0].kind == "label" and drafts[0].question == 'What is written under "Papiamentu" in the document "udhr.txt"?'


def test_every_chunk_with_text_gets_a_pair(parse):
    for text in ["Here is some text.", "Master footer is here", "Tensile Strength of SNB22-3."]:
        assert _pairs(_chunk(text), 3), text


def test_boilerplate_is_never_quoted(parse):
    text = (
        'Page 3\n\nhttps://example.com/reports/2023\n\n{"id": 7, "tags": ["a"]}\n\n'
        "The archive keeps old maps of the valley in a cold room.\n\n- 4 -"
    )
    drafts = _pairs(_chunk(text))
    assert drafts and all(d.quote.startswith("The archive keeps") for d in drafts)


def test_no_question_about_a_pronoun(parse):
    text = "It is a large building with many rooms. They opened it last year. He said this was good."
    for draft in extractive_pairs(_chunk(text, ["Museum"]), 5):
        assert not re.search(r"\b(?:it|they|he|this)\b", re.sub(r'"[^"]*"', "", draft.question), re.IGNORECASE), draft


def test_limit_order_and_determinism(parse):
    text = (
        "A crampit is a strip of iron on which the player stands. The rink was opened in 1909. "
        "The skip directs the play of his side. Curling stones weigh about forty pounds each."
    )
    chunk = _chunk(text, ["Curling"])
    drafts = extractive_pairs(chunk, 3)
    assert len(drafts) == 3 and drafts[0].kind == "definition"
    assert extractive_pairs(chunk, 3) == drafts
    assert extractive_pairs(chunk, 0) == [] and extractive_pairs(_chunk("   \n"), 3) == []
    assert len({normalize(d.question) for d in extractive_pairs(chunk, 20)}) == len(extractive_pairs(chunk, 20))


def test_information_units_count_sentences_items_and_rows():
    text = (
        "Opening hours vary. The room closes at five.\n\nRules:\n\n- No food\n- No pens\n\nDay | Opens\nMonday | 9\nTuesday | 10\n\nPage 2"
    )
    assert information_units(text) == 2 + 2 + 2
    assert information_units("Page 7\n\nhttps://example.com") == 0


@pytest.fixture(scope="module")
def corpus_chunks(corpus, tmp_path_factory) -> list[Chunk]:
    docs = tmp_path_factory.mktemp("docs")
    for rel in CORPUS_FILES:
        shutil.copy(corpus / rel, docs / Path(rel).name)
    out = tmp_path_factory.mktemp("out")
    ingest_folder(docs, out, IngestConfig(workers=1, engines={"md": ["text"]}))
    documents = [Document.model_validate(d) for d in iter_jsonl(out / "documents.jsonl")]
    assert len(documents) == len(CORPUS_FILES) and all(d.text for d in documents)
    return [chunk for d in documents for chunk in chunk_document(d, _count, max_tokens=384)]


def test_real_files_every_chunk_with_text_yields_grounded_pairs(corpus_chunks, parse):
    assert len(corpus_chunks) >= 20
    kinds = set()
    for chunk in corpus_chunks:
        units = information_units(chunk.text)
        drafts = _pairs(chunk, max(1, min(8, (units + 1) // 2)))
        if units:
            assert drafts, chunk.text[:200]
        questions = [normalize(d.question) for d in drafts]
        assert len(questions) == len(set(questions)), questions
        kinds.update(d.kind for d in drafts)
    assert {"table_row", "list", "field", "sentence"} <= kinds


def test_works_with_spacy_blocked_in_a_fresh_interpreter():
    script = (
        "import json, sys; sys.modules['spacy'] = None\n"
        "from docpipe.contracts import Chunk\n"
        "from docpipe.qa import extractive\n"
        "from docpipe.qa.extractive.parse import _nlp\n"
        "text = 'The Norwich library was founded in 1902 by the city council. A crampit is a strip of iron.'\n"
        "chunk = Chunk(id='c', doc_id='d', path='a.txt', text=text, start=0, end=len(text), tokens=20)\n"
        "drafts = extractive.extractive_pairs(chunk, 4)\n"
        "print(json.dumps({'nlp': _nlp() is None, 'drafts': [d.__dict__ for d in drafts],\n"
        "                  'paraphrase': extractive.paraphrase('What is a crampit?')}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], check=False, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["nlp"] and result["paraphrase"]
    questions = [d["question"] for d in result["drafts"]]
    assert "What is a crampit?" in questions and "When was the Norwich library founded?" in questions


@pytest.mark.parametrize(
    ("question", "kept"),
    [
        ("What is a lobule?", ["lobule"]),
        ("What does the exercise involve?", ["exercise"]),
        ('How many Stanley Cups does Maple Leafs have in the "Stanley Cups" table?', ["Stanley", "Cups", "Maple", "Leafs"]),
        ("When was the Norwich library founded?", ["Norwich", "library", "founded"]),
        ("What did Belarusian President Alexander Lukashenko order on December 13?", ["Lukashenko", "December", "13"]),
        ("Who ordered a snap readiness check of the Belarusian military?", ["snap", "readiness", "check", "Belarusian"]),
        ('What does the section "Oberland District" say about excellent ski-ing slopes?', ["Oberland District", "slopes"]),
        ('What is said about the players and the stones in the section "Curling"?', ["players", "stones", "Curling"]),
        ('What information about the skip does the document "curling.txt" give?', ["skip", "curling.txt"]),
        ('What is written under "Papiamentu" in the document "udhr.txt"?', ["Papiamentu", "udhr.txt"]),
        ('What items are listed under "Chapter 1"?', ["Chapter 1"]),
        ("Which files does the sample folder contain?", ["files", "sample", "folder"]),
        ("What must a candidate obtain out of 6 in each figure?", ["candidate", "6", "figure"]),
        ("Why is Wengen popular with skiers?", ["Wengen", "popular", "skiers"]),
        ('What is the Location of Blues in the "Stanley Cups" table?', ["Location", "Blues", "Stanley Cups"]),
    ],
)
def test_paraphrase_rewords_materially_and_keeps_the_meaning(question, kept):
    rewording = paraphrase(question)
    assert rewording and rewording.endswith("?") and rewording != question
    assert _jaccard(question, rewording) < MAX_JACCARD, rewording
    for word in kept:
        assert word.lower() in rewording.lower(), (word, rewording)


def test_paraphrase_seeds_pick_other_rewordings_deterministically():
    question = "What is a lobule?"
    assert paraphrase(question, seed=0) == paraphrase(question, seed=0)
    assert paraphrase(question, seed=0) != paraphrase(question, seed=1)


@pytest.mark.parametrize("question", ["Is the sky blue?", "Yes?", ""])
def test_paraphrase_without_a_rule_is_none(question):
    assert paraphrase(question) is None
