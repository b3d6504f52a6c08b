"""The dataset made from the whole shared corpus, offline, without a model: every accepted
citation re-verified against the ingested documents' text, every document with text covered."""

from __future__ import annotations

import shutil

import pytest

from docpipe.config import DocpipeConfig
from docpipe.contracts import Document
from docpipe.runtime.citation import support
from docpipe.store import iter_jsonl
from tests.stages import generate_dataset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus_dataset(ingested_corpus, tmp_path_factory):
    _, ingested = ingested_corpus
    out = tmp_path_factory.mktemp("corpus-dataset")
    shutil.copy(ingested / "documents.jsonl", out / "documents.jsonl")
    return generate_dataset(out, DocpipeConfig(), llm=None), out


def test_every_accepted_citation_is_in_the_ingested_document(corpus_dataset):
    report, out = corpus_dataset
    docs = {d["sha256"][:16]: Document.model_validate(d) for d in iter_jsonl(out / "documents.jsonl")}
    records = [r for name in ("train", "eval") for r in iter_jsonl(out / "dataset" / f"{name}.jsonl") if r["kind"] != "refusal"]
    facts = {r["fact_id"] for r in records if r["kind"] == "qa"}
    assert len(facts) == report.facts >= 500 and report.funnel["dedup"] >= report.facts
    for record in records:  # every wording of every fact, and every rehearsed passage
        c = record["citation"]
        doc = docs[c["doc_id"]]
        assert doc.text[c["start"] : c["end"]] == c["quote"] and doc.path == c["path"]
        assert support(record["answer"], c["quote"]) >= 0.6
        if c["page"] is not None:
            assert doc.pages is None or 1 <= c["page"] <= doc.pages


def test_every_document_with_text_is_covered(corpus_dataset):
    report, _ = corpus_dataset
    assert report.uncovered == {}
    assert report.documents_covered == report.documents_with_text >= 85
    assert report.chunks_covered / report.chunks_with_content >= 0.9


def test_no_question_is_repeated_and_held_out_facts_are_never_trained(corpus_dataset):
    report, out = corpus_dataset
    train = [r for r in iter_jsonl(out / "dataset" / "train.jsonl") if r["kind"] == "qa"]
    held = list(iter_jsonl(out / "dataset" / "eval.jsonl"))
    questions = [r["question"] + r["answer"] for r in train + held]
    assert len(set(questions)) == len(questions)
    assert not {r["fact_id"] for r in train} & {r["fact_id"] for r in held}  # an unseen fact is never asked in training
    assert {r["chunk_id"] for r in held} <= {r["chunk_id"] for r in train}  # ... but its chunk is trained on: no content held out
    assert 0.03 <= len({r["fact_id"] for r in held}) / report.facts <= 0.3
    rephrased = list(iter_jsonl(out / "dataset" / "probes_paraphrase.jsonl"))
    assert rephrased and not {p["question"] for p in rephrased} & {r["question"] for r in train}


def test_the_card_shows_the_funnel_and_coverage(corpus_dataset):
    report, out = corpus_dataset
    card = (out / "dataset" / "README.md").read_text()
    for stage in ("candidates written", "quote found in the source", "answer supported by the quote", "after removing duplicates"):
        assert stage in card
    assert f"{report.documents_covered} of {report.documents_with_text} documents with text" in card
    assert (
        report.splits["probes_abstain"] >= 20
        and report.splits["probes_paraphrase"] >= 20
        and report.splits["dpo"] == report.train_kinds["qa"]
    )
