"""Formats come from the bytes; the extension only picks among look-alikes."""

from __future__ import annotations

import shutil

import pytest

from docpipe.ingest.extraction import ExtractionError
from docpipe.ingest.routing import ROUTES
from docpipe.ingest.sniff import EXTENSIONS, detect_format


def test_every_extension_has_a_route():
    assert set(EXTENSIONS.values()) <= set(ROUTES)


@pytest.mark.parametrize(
    "relpath, fmt",
    [
        ("pdf/fake-memo.pdf", "pdf"),
        ("docx/handbook-1p.docx", "docx"),
        ("docm/testWORD_macros.docm", "docm"),
        ("dotx/testWORD_template.dotx", "dotx"),
        ("doc/simple.doc", "doc"),
        ("xls/testEXCEL.xls", "xls"),
        ("xlsb/testEXCEL.xlsb", "xlsb"),
        ("ppt/fake-power-point.ppt", "ppt"),
        ("msg/fake-email.msg", "msg"),
        ("odt/simple.odt", "odt"),
        ("ods/test-columnar.ods", "ods"),
        ("odp/LibreOfficeImpress_odp_1.3.odp", "odp"),
        ("epub/winter-sports.epub", "epub"),
        ("pages/testPages.pages", "pages"),
        ("zip/simple.zip", "zip"),
        ("heic/testHEIF.heic", "heic"),
        ("tiff/testTIFF.tif", "tiff"),
        ("bmp/testBMP.bmp", "bmp"),
        ("txt/fake-text-utf-16-be.txt", "txt"),
        ("xml/factbook-utf-16.xml", "xml"),
        ("rtf/fake-doc.rtf", "rtf"),
    ],
)
def test_corpus_formats_are_detected(corpus, relpath, fmt):
    assert detect_format(corpus / relpath) == fmt


def test_pdf_named_docx_is_read_as_pdf(corpus, tmp_path):
    renamed = tmp_path / "report.docx"
    shutil.copy(corpus / "pdf" / "fake-memo.pdf", renamed)
    assert detect_format(renamed) == "pdf"


def test_garbage_with_a_document_extension_fails_with_a_reason(bad_inputs):
    with pytest.raises(ExtractionError, match="not a valid docx"):
        detect_format(bad_inputs / "garbage.docx")


def test_empty_file_fails_with_a_reason(bad_inputs):
    with pytest.raises(ExtractionError, match="empty file"):
        detect_format(bad_inputs / "empty.pdf")


def test_encrypted_office_file_says_so(bad_inputs):
    with pytest.raises(ExtractionError, match="encrypted"):
        detect_format(bad_inputs / "password_protected.xlsx")


def test_unknown_binary_is_unsupported(tmp_path):
    blob = tmp_path / "thing.bin"
    blob.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ExtractionError, match="unsupported file type"):
        detect_format(blob)


def test_extension_picks_among_look_alikes(corpus, tmp_path):
    # A .docx with no extension is still a Word file: the content decides the family.
    bare = tmp_path / "noext"
    shutil.copy(corpus / "docx" / "handbook-1p.docx", bare)
    assert detect_format(bare) == "docx"
