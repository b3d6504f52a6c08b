"""Every file of the shared corpus (40 formats) read end to end, checked against golden snippets.

The golden file holds, per corpus file, the expected status, format and page count and a few
snippets of its text, reviewed by hand against the source. Regenerate only on purpose:
DOCPIPE_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/ingest/test_corpus.py
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from docpipe.contracts import Document
from docpipe.store import iter_jsonl

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "ingest" / "groundtruth" / "corpus.json"
REGENERATE = os.environ.get("DOCPIPE_REGEN_GOLDEN") == "1"
MIN_FORMATS = 36

pytestmark = pytest.mark.slow


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


@pytest.fixture(scope="module")
def ingested(ingested_corpus):
    report, out = ingested_corpus
    docs = {d["path"]: Document.model_validate(d) for d in iter_jsonl(out / "documents.jsonl")}
    if REGENERATE:
        _write_golden(docs)
    return report, docs


def _golden() -> dict:
    return json.loads(GOLDEN.read_text(encoding="utf-8"))


def _snippets(doc: Document) -> list[str]:
    """Up to three snippets: from the first, middle and last substantial elements."""
    candidates = [e.text for e in doc.elements if len(_norm(e.text)) >= 24] or [doc.text]
    picks = {candidates[0], candidates[len(candidates) // 2], candidates[-1]}
    return sorted(_norm(p)[:60].strip() for p in picks if _norm(p))


def _write_golden(docs: dict[str, Document]) -> None:
    golden = {
        path: {"status": d.status.value, "format": d.format, "pages": d.pages, "snippets": _snippets(d) if d.text else []}
        for path, d in sorted(docs.items())
    }
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def test_at_least_36_formats_are_read(ingested):
    report, _ = ingested
    readable = sorted(fmt for fmt, s in report.formats.items() if s.ok + s.partial > 0)
    assert len(readable) >= MIN_FORMATS, readable


def test_every_corpus_file_is_reported(ingested, corpus):
    _, docs = ingested
    on_disk = {p.relative_to(corpus).as_posix() for p in corpus.rglob("*") if p.is_file()}
    assert set(docs) == on_disk


@pytest.mark.parametrize("path", sorted(_golden()) if GOLDEN.exists() else [])
def test_file_matches_golden(ingested, path):
    _, docs = ingested
    expected, doc = _golden()[path], docs[path]
    assert (doc.status.value, doc.format) == (expected["status"], expected["format"]), doc.reason
    assert doc.pages == expected["pages"]
    text = _norm(doc.text)
    for snippet in expected["snippets"]:
        assert snippet in text, f"{path}: missing {snippet!r}"


def test_offsets_are_exact_and_pages_in_range(ingested):
    _, docs = ingested
    for doc in docs.values():
        for el in doc.elements:
            assert doc.text[el.start : el.end] == el.text
            if doc.pages and el.page is not None:
                assert 1 <= el.page <= doc.pages, (doc.path, el.page, doc.pages)
