"""The parser pool survives hanging, memory-hungry, crashing and panicking parsers."""

from __future__ import annotations

from pathlib import Path

import pytest

from docpipe.config import IngestConfig
from tests.stages import ingest_folder

FAKE = "tests.ingest.fake_engines:"


def _ingest(tmp_path: Path, engines: list[str], **cfg) -> dict:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "victim.txt").write_text("a file whose parser misbehaves\n")
    (docs / "bystander.md").write_text("# Title\n\nAn ordinary file that must still be read.\n")
    config = IngestConfig(engines={"txt": [FAKE + e for e in engines], "md": [FAKE + "echo"]}, workers=2, **cfg)
    report = ingest_folder(docs, tmp_path / "out", config)
    assert report.formats["md"].ok == 1, "the other file must be read whatever the victim did"
    import json

    lines = (tmp_path / "out" / "documents.jsonl").read_text().splitlines()
    return {d["path"]: d for d in map(json.loads, lines)}


def test_hanging_parser_is_killed_and_the_next_engine_reads_the_file(tmp_path):
    docs = _ingest(tmp_path, ["hang", "echo"], timeout_s=2)
    victim = docs["victim.txt"]
    assert victim["status"] == "ok"
    assert victim["engine"] == FAKE + "echo"
    assert "timed out after 2 s" in victim["attempts"][0]


def test_hanging_parser_with_no_fallback_is_reported(tmp_path):
    victim = _ingest(tmp_path, ["hang"], timeout_s=2)["victim.txt"]
    assert victim["status"] == "failed"
    assert "timed out after 2 s (parser killed)" in victim["reason"]


def test_memory_hungry_parser_is_killed(tmp_path):
    victim = _ingest(tmp_path, ["hog_memory"], max_rss_mb=400, timeout_s=60)["victim.txt"]
    assert victim["status"] == "failed"
    assert "over max_rss_mb=400" in victim["reason"]


def test_crashing_parser_is_reported_and_replaced(tmp_path):
    victim = _ingest(tmp_path, ["crash", "echo"])["victim.txt"]
    assert victim["status"] == "ok"
    assert "crashed" in victim["attempts"][0]


@pytest.mark.parametrize("engines", [["panic", "echo"]])
def test_base_exception_from_a_parser_falls_back(tmp_path, engines):
    # Regression guard: kreuzberg raises Rust panics as a BaseException, which `except Exception` misses.
    victim = _ingest(tmp_path, engines)["victim.txt"]
    assert victim["status"] == "ok"
    assert "FakePanic" in victim["attempts"][0]
