"""With an optional parser missing, ingestion falls back to the next engine and says why."""

from __future__ import annotations

import pytest

from tests.ingest.subprocess_ingest import ingest_with_sitecustomize

BLOCKER = "import sys\nfor name in {names!r}:\n    sys.modules[name] = None  # as if not installed\n"
SAMPLES = ["docx/handbook-1p.docx", "pdf/fake-memo.pdf", "html/fake-html-cp1252.html", "txt/norwich-city.txt"]


def _ingest_without(blocked: list[str], corpus, tmp_path) -> dict[str, dict]:
    sources = {rel.split("/")[1]: corpus / rel for rel in SAMPLES}
    return ingest_with_sitecustomize(sources, tmp_path, BLOCKER.format(names=blocked))


@pytest.mark.parametrize(
    "blocked, fallback",
    [
        (["unstructured"], {"handbook-1p.docx": "kreuzberg", "fake-html-cp1252.html": "kreuzberg"}),
        (["kreuzberg"], {"fake-memo.pdf": "poppler", "fake-html-cp1252.html": "unstructured"}),
    ],
)
def test_missing_parser_falls_back(blocked, fallback, corpus, tmp_path):
    docs = _ingest_without(blocked, corpus, tmp_path)
    for name, engine in fallback.items():
        assert docs[name]["engine"] == engine, docs[name]["attempts"]
        assert any(f"{blocked[0]}: not installed" in a for a in docs[name]["attempts"])
    assert docs["norwich-city.txt"]["status"] == "ok"
