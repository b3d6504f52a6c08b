"""Bad input never stops the run and is never silent: each hostile file gets a clear reason."""

from __future__ import annotations

import os

import pytest

from docpipe.config import IngestConfig
from docpipe.ingest import pipeline
from docpipe.store import iter_jsonl
from tests.ingest.hostile_files import big_text
from tests.stages import ingest_folder


@pytest.fixture(scope="module")
def ingested(bad_inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    report = ingest_folder(bad_inputs, out, IngestConfig(workers=2))
    return report, {d["path"]: d for d in iter_jsonl(out / "documents.jsonl")}


@pytest.mark.parametrize(
    "name, status, reason",
    [
        ("empty.pdf", "failed", "empty file (0 bytes)"),
        ("empty.docx", "failed", "empty file (0 bytes)"),
        ("empty.txt", "failed", "empty file (0 bytes)"),
        ("encrypted.pdf", "failed", "encrypted PDF"),
        ("password_protected.xlsx", "failed", "encrypted Office file"),
        ("password_protected.docx", "failed", "encrypted Office file"),
        ("garbage.docx", "failed", "not a valid docx file"),
        ("zipbomb.docx", "failed", "possible zip bomb"),
        ("loop_a.txt", "skipped", "symlink loop"),
        ("outside_link.txt", "skipped", "outside the input folder"),
    ],
)
def test_hostile_file_gets_its_reason(ingested, name, status, reason):
    doc = ingested[1][name]
    assert doc["status"] == status
    assert reason in doc["reason"]
    assert "\n" not in doc["reason"], "a reason is one line"


def test_truncated_pdf_is_not_silently_ok(ingested):
    doc = ingested[1]["truncated.pdf"]
    assert doc["status"] in ("failed", "partial")
    assert "truncated" in doc["reason"] or "damaged" in doc["reason"] or "no usable text" in doc["reason"]


def test_pdf_with_a_docx_name_is_read_as_pdf(ingested):
    doc = ingested[1]["pdf_renamed.docx"]
    assert (doc["status"], doc["format"]) == ("ok", "pdf")
    assert "20,000 bottles of water" in doc["text"]


@pytest.mark.parametrize("name", ["cp1252.txt", "utf16le_bom.txt", "utf16be_nobom.txt", "invalid_utf8.txt"])
def test_legacy_and_broken_encodings_are_decoded(ingested, name):
    doc = ingested[1][name]
    assert doc["status"] in ("ok", "partial")
    assert "Grüße aus Köln: naïve café" in doc["text"]
    assert "Second paragraph" in doc["text"]


def test_every_file_is_in_the_report(ingested, bad_inputs):
    report, docs = ingested
    on_disk = {p.name for p in bad_inputs.iterdir()}
    assert set(docs) == on_disk
    assert report.files == len(on_disk)
    assert set(report.failures) == {p for p, d in docs.items() if d["status"] in ("failed", "skipped")}


def test_unreadable_file_is_reported(tmp_path, monkeypatch):
    (tmp_path / "docs").mkdir()
    locked = tmp_path / "docs" / "locked.txt"
    locked.write_text("private")
    (tmp_path / "docs" / "open.txt").write_text("A readable file with enough words in it.")
    locked.chmod(0)
    if os.geteuid() == 0:  # root reads anything: make the read fail as it would for a user
        real = pipeline.sha256_file

        def denied(path, *args):
            if path.name == "locked.txt":
                raise PermissionError(13, "Permission denied")
            return real(path, *args)

        monkeypatch.setattr(pipeline, "sha256_file", denied)
    ingest_folder(tmp_path / "docs", tmp_path / "out", IngestConfig(workers=1))
    docs = {d["path"]: d for d in iter_jsonl(tmp_path / "out" / "documents.jsonl")}
    assert docs["locked.txt"]["status"] == "failed"
    assert "Permission denied" in docs["locked.txt"]["reason"]
    assert docs["open.txt"]["status"] == "ok"


def test_fifo_does_not_block_the_run(tmp_path):
    (tmp_path / "docs").mkdir()
    os.mkfifo(tmp_path / "docs" / "pipe.txt")
    (tmp_path / "docs" / "open.txt").write_text("A readable file with enough words in it.")
    report = ingest_folder(tmp_path / "docs", tmp_path / "out", IngestConfig(workers=1))
    assert "not a regular file" in report.failures["pipe.txt"]


@pytest.mark.slow
def test_50_mb_text_file_is_read_within_a_memory_cap(tmp_path):
    (tmp_path / "docs").mkdir()
    big_text(tmp_path / "docs" / "big.txt", 50)
    # The parser process is killed above 1 GiB: a whole-file-in-memory parser would pass 50 MB
    # several times over (bytes, str, elements, JSON), a streamed one stays far below.
    cfg = IngestConfig(workers=1, max_rss_mb=1024, timeout_s=240)
    report = ingest_folder(tmp_path / "docs", tmp_path / "out", cfg)
    doc = next(iter_jsonl(tmp_path / "out" / "documents.jsonl"))
    assert doc["status"] == "ok", doc["reason"]
    assert len(doc["text"]) > 45 * 2**20
    assert report.parsed == 1
