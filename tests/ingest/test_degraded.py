"""With an optional parser missing, ingestion falls back to the next engine and says why."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

BLOCKER = "import sys\nfor name in {names!r}:\n    sys.modules[name] = None  # as if not installed\n"
SAMPLES = ["docx/handbook-1p.docx", "pdf/fake-memo.pdf", "html/fake-html-cp1252.html", "txt/norwich-city.txt"]


def _ingest_without(blocked: list[str], corpus, tmp_path) -> dict[str, dict]:
    docs, hooks = tmp_path / "docs", tmp_path / "hooks"
    docs.mkdir()
    hooks.mkdir()
    for rel in SAMPLES:
        shutil.copy(corpus / rel, docs / rel.split("/")[1])
    # sitecustomize runs in every process of the run, the spawned parser workers too.
    (hooks / "sitecustomize.py").write_text(BLOCKER.format(names=blocked))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hooks), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "docpipe", "ingest", str(docs), "--out", str(tmp_path / "out")]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = (tmp_path / "out" / "documents.jsonl").read_text().splitlines()
    return {d["path"]: d for d in map(json.loads, lines)}


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
