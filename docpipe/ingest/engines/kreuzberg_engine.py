"""Read documents with kreuzberg (Rust parsers, Tesseract OCR): PDFs page by page, other formats as a node tree."""

from __future__ import annotations

import re
import time
from pathlib import Path

from docpipe.config import IngestConfig
from docpipe.contracts import ElementKind
from docpipe.ingest.extraction import Block, Extraction, ExtractionError, ocr_noise, visible_chars

try:
    import kreuzberg
except ImportError as exc:  # parse.py turns this into "not installed; install docpipe[ingest]"
    raise ImportError(f"kreuzberg is not installed ({exc}); pip install 'docpipe[ingest]'", name="kreuzberg") from exc

# Passed explicitly: kreuzberg trusts the file extension, so a PDF named .docx would fail.
MIME_TYPES = {
    "pdf": "application/pdf",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "docm": "application/vnd.ms-word.document.macroEnabled.12",
    "dotx": "application/vnd.openxmlformats-officedocument.wordprocessingml.template",
    "ppt": "application/vnd.ms-powerpoint",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "pptm": "application/vnd.ms-powerpoint.presentation.macroEnabled.12",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "xlsm": "application/vnd.ms-excel.sheet.macroEnabled.12",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "odt": "application/vnd.oasis.opendocument.text",
    "rtf": "application/rtf",
    "epub": "application/epub+zip",
    "html": "text/html",
    "htm": "text/html",
    "xml": "application/xml",
    "md": "text/markdown",
    "rst": "text/x-rst",
    "org": "text/x-org",
    "eml": "message/rfc822",
    "msg": "application/vnd.ms-outlook",
    "png": "image/png",
    "jpg": "image/jpeg",
    "tiff": "image/tiff",
    "bmp": "image/bmp",
    "gif": "image/gif",
    "webp": "image/webp",
}
IMAGE_FORMATS = {"png", "jpg", "tiff", "bmp", "gif", "webp"}
# Only for these does kreuzberg put page (slide) markers into the text; its node tree for them
# has no slide numbers (4.10.4).
SLIDE_FORMATS = {"pptx", "pptm"}
SHEET_FORMATS = {"xls", "xlsx", "xlsm", "ods"}  # a sheet is a page
OCR_DPI = 300
OCR_TIME_SHARE = 0.8  # of cfg.timeout_s: return the pages read so far before the worker is killed
_PAGE_MARKER = "\n\n\u27e6docpipe page {page_num}\u27e7\n\n"
_PAGE_MARKER_RE = re.compile(r"\u27e6docpipe page (\d+)\u27e7")
_BULLET = re.compile(r"^\s*[\u2022\u25cf\u25aa\u25e6\u25a0\u25a1\u27a2\u25ba\u2713\uf0b7]\s*")
_SENTENCE_END = re.compile(r"[.!?:;\"'\u201d\u2019)\]]$")
_BLANK_LINE = re.compile(r"\n\s*\n")
_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)\s]*\)")
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)\s]*\)")
_MD_STRONG = re.compile(r"\*\*(\S(?:.*?\S)?)\*\*")
_RULE_ONLY = re.compile(r"^[\s|:\-]*$")  # what is left of a Markdown table's separator row


def extract(path: Path, fmt: str, cfg: IngestConfig) -> Extraction:
    """Read `path` (of detected format `fmt`) into blocks with page numbers where the format has pages."""
    if fmt == "pdf":
        return _read_pdf(path, cfg)
    if fmt in IMAGE_FORMATS:
        return _read_image(path, fmt, cfg)
    if fmt in SLIDE_FORMATS:
        return _read_slides(path, fmt)
    return _read_tree(path, fmt)


# --- calling kreuzberg ---------------------------------------------------------------------


def _config(**options) -> kreuzberg.ExtractionConfig:
    # No result cache: it would write under ~/.cache and docpipe has its own cache.
    return kreuzberg.ExtractionConfig(use_cache=False, **options)


def _ocr_config(cfg: IngestConfig) -> kreuzberg.OcrConfig:
    tesseract = kreuzberg.TesseractConfig(language=cfg.ocr_languages, use_cache=False)
    return kreuzberg.OcrConfig(backend="tesseract", language=cfg.ocr_languages, tesseract_config=tesseract)


def _run(call, *args, **kwargs) -> kreuzberg.ExtractionResult:
    """Call kreuzberg; turn its errors into one-line reasons (Rust panics pass through to the caller)."""
    try:
        return call(*args, **kwargs)
    except kreuzberg.KreuzbergError as exc:
        raise ExtractionError(_reason(exc)) from None
    except OSError as exc:
        raise ExtractionError(f"cannot read: {exc.strerror or exc}") from None


def _reason(exc: Exception) -> str:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if "password" in text.lower():
        what = "encrypted PDF" if "pdf" in text.lower() else "password-protected"
        return f"{what}: it needs a password to open; remove the password and re-run"
    # kreuzberg repeats its cause chain ("ParsingError: X: Y: X: Y"): keep each part once.
    parts: list[str] = []
    for part in text.split(": "):
        if part not in parts and part != type(exc).__name__:
            parts.append(part)
    return ": ".join(parts)[:300] or type(exc).__name__


def _extract_file(path: Path, fmt: str, config: kreuzberg.ExtractionConfig) -> kreuzberg.ExtractionResult:
    return _run(kreuzberg.extract_file_sync, str(path), MIME_TYPES.get(fmt), config)


# --- PDF and images ------------------------------------------------------------------------


def _read_pdf(path: Path, cfg: IngestConfig) -> Extraction:
    # OCR stays off here: with an OcrConfig kreuzberg also OCRs text PDFs (4.5 s -> >300 s on 619 pages).
    result = _extract_file(path, "pdf", _config(pages=kreuzberg.PageConfig(extract_pages=True)))
    pages = _pdf_pages(result)
    blocks = [block for page, text in pages for block in _page_blocks(text, page)]
    extraction = Extraction(blocks=blocks, pages=result.get_page_count() or None)
    if extraction.char_count() < cfg.min_chars and cfg.ocr:
        return _ocr_pdf(path, cfg)
    scanned = [page for page, text in pages if page is not None and visible_chars(text) < cfg.min_chars]
    if scanned and cfg.ocr:
        _ocr_pages(path, pages, scanned, cfg, extraction)
    return extraction


def _ocr_pages(path: Path, pages: list, scanned: list[int], cfg: IngestConfig, extraction: Extraction) -> None:
    """OCR the text-less pages of a PDF that has text elsewhere (a scan bound into a report).

    Rebuilds the blocks in page order. A blank page costs one OCR pass (about a second).
    """
    config = _config(ocr=_ocr_config(cfg))
    deadline = time.monotonic() + cfg.timeout_s * OCR_TIME_SHARE
    ocr_text: dict[int, str] = {}
    for done, page in enumerate(scanned):
        if time.monotonic() > deadline:
            extraction.warnings.append(f"OCR of text-less pages stopped after {done} of {len(scanned)} (ingest.timeout_s)")
            break
        png = _run(kreuzberg.render_pdf_page, str(path), page - 1, dpi=OCR_DPI)
        ocr_text[page] = _run(kreuzberg.extract_bytes_sync, png, "image/png", config).content
    extraction.blocks = [block for page, text in pages for block in _page_blocks(ocr_text.get(page, text), page)]


def _pdf_pages(result: kreuzberg.ExtractionResult) -> list[tuple[int | None, str]]:
    """(page number, text) pairs; the whole text without page numbers when the pages lost it.

    On some PDFs (seen on one LibreOffice made) kreuzberg's per-page texts come out empty while
    the document text is complete; text without a page beats no text.
    """
    pages = [(page["page_number"], page["content"]) for page in result.pages or []]
    if visible_chars(result.content) > 2 * sum(visible_chars(text) for _, text in pages):
        return [(None, result.content)]
    return pages


def _ocr_pdf(path: Path, cfg: IngestConfig) -> Extraction:
    """OCR a scanned PDF one rendered page at a time, stopping short of the file's time limit.

    kreuzberg's own force_ocr puts all OCR text before its page boundaries (4.10.4), so its
    pages would be wrong; rendering each page ourselves keeps every block on its page.
    """
    config = _config(ocr=_ocr_config(cfg))
    deadline = time.monotonic() + cfg.timeout_s * OCR_TIME_SHARE
    extraction = Extraction()
    try:
        with kreuzberg.PdfPageIterator(str(path), dpi=OCR_DPI) as rendered:
            extraction.pages = len(rendered)
            for index, png in rendered:
                if time.monotonic() > deadline:
                    extraction.warnings.append(f"OCR stopped after {index} of {len(rendered)} pages (ingest.timeout_s)")
                    break
                result = _run(kreuzberg.extract_bytes_sync, png, "image/png", config)
                extraction.blocks += _page_blocks(result.content, index + 1)
    except kreuzberg.KreuzbergError as exc:
        raise ExtractionError(_reason(exc)) from None
    return extraction


def _read_image(path: Path, fmt: str, cfg: IngestConfig) -> Extraction:
    if not cfg.ocr:
        raise ExtractionError("OCR is off (ingest.ocr: false), so images give no text")
    result = _extract_file(path, fmt, _config(ocr=_ocr_config(cfg)))
    warnings = []
    frames = _frame_count(path) if fmt == "tiff" else 1
    if frames > 1:  # kreuzberg reads the first frame only
        warnings.append(f"only the first of {frames} TIFF pages was read")
    blocks = [] if ocr_noise(result.content) else _page_blocks(result.content, 1)  # a photo: specks, not text
    return Extraction(blocks=blocks, pages=1, warnings=warnings)


def _frame_count(path: Path) -> int:
    try:
        from PIL import Image

        with Image.open(path) as image:
            return getattr(image, "n_frames", 1)
    except Exception:  # Pillow missing or the file unreadable by it: nothing to warn about
        return 1


def _page_blocks(text: str, page: int | None) -> list[Block]:
    """Split one page of plain text into paragraphs; bullet lines become list items."""
    blocks = []
    for paragraph in _paragraphs(text):
        kind = ElementKind.list_item if _BULLET.match(paragraph) else ElementKind.text
        blocks.append(Block(kind=kind, text=paragraph, page=page))
    return blocks


def _paragraphs(text: str) -> list[str]:
    """Group lines into paragraphs.

    kreuzberg's PDF text has one line per printed line and no blank lines between paragraphs.
    A paragraph ends at a blank line or at a line that ends a sentence while falling short of
    the page's usual line width (the last line of a paragraph); a bullet starts a new one.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lengths = sorted(len(line.strip()) for line in lines if line.strip())
    width = lengths[int(len(lengths) * 0.9)] if lengths else 0
    paragraphs: list[str] = []
    current: list[str] = []
    for line in lines:
        stripped = line.strip()
        if current and (not stripped or _BULLET.match(stripped)):
            paragraphs.append("\n".join(current))
            current = []
        if stripped:
            current.append(stripped)
            if _SENTENCE_END.search(stripped) and len(stripped) < 0.85 * width:
                paragraphs.append("\n".join(current))
                current = []
    if current:
        paragraphs.append("\n".join(current))
    return paragraphs


# --- slide decks ---------------------------------------------------------------------------


def _read_slides(path: Path, fmt: str) -> Extraction:
    """pptx/pptm: split kreuzberg's text at its slide markers (its node tree has no slide numbers)."""
    pages = kreuzberg.PageConfig(extract_pages=True, insert_page_markers=True, marker_format=_PAGE_MARKER)
    result = _extract_file(path, fmt, _config(pages=pages))
    pieces = _PAGE_MARKER_RE.split(result.content)
    blocks: list[Block] = _text_blocks(pieces[0], None)
    for number, text in zip(pieces[1::2], pieces[2::2]):
        blocks += _text_blocks(text, int(number))
    return Extraction(blocks=blocks, pages=len(pieces) // 2 or None)


def _text_blocks(text: str, page: int | None) -> list[Block]:
    """Paragraphs at blank lines; tab-separated rows (how tables come out) join into one table block."""
    blocks: list[Block] = []
    for paragraph in _BLANK_LINE.split(text.strip()):
        if "\t" in paragraph:
            row = " | ".join(cell.strip() for cell in paragraph.split("\t"))
            if blocks and blocks[-1].kind == ElementKind.table and blocks[-1].page == page:
                blocks[-1].text += "\n" + row
                continue
            blocks.append(Block(kind=ElementKind.table, text=row, page=page))
        elif paragraph.strip():
            blocks.append(Block(kind=ElementKind.text, text=paragraph, page=page))
    return blocks


# --- everything else: kreuzberg's document tree --------------------------------------------

_NODE_KINDS = {
    "title": ElementKind.title,
    "heading": ElementKind.title,
    "paragraph": ElementKind.text,
    "quote": ElementKind.text,
    "list_item": ElementKind.list_item,
    "code": ElementKind.code,
    "formula": ElementKind.other,
    "footnote": ElementKind.other,
}
_LAYER_KINDS = {"header": ElementKind.header, "footer": ElementKind.footer}
# Containers and markers whose text, if any, is repeated by their children.
_STRUCTURAL = {"group", "list", "page_break", "image", "slide"}


def _read_tree(path: Path, fmt: str) -> Extraction:
    config = _config(include_document_structure=True, pages=kreuzberg.PageConfig(extract_pages=True))
    result = _extract_file(path, fmt, config)
    nodes = (result.document or {}).get("nodes") or []
    if not nodes:  # no tree (not seen on the corpus): keep the plain text
        return Extraction(blocks=_text_blocks(result.content, None))
    blocks: list[Block] = []
    for node in nodes:
        content = node["content"]
        # .ppt: kreuzberg 4.10.4 puts every slide of a deck under its first "slide" node and its
        # "footnote" nodes repeat the whole deck, so slide numbers are not trusted and notes dropped.
        if content["node_type"] == "slide" and content.get("title"):
            blocks.append(Block(kind=ElementKind.title, text=content["title"], level=1))
        elif not (fmt == "ppt" and content["node_type"] == "footnote"):
            blocks += _node_blocks(node)
    # Word processors have no fixed pages (kreuzberg counts explicit breaks only): say nothing.
    pages = (result.get_page_count() or None) if fmt in SHEET_FORMATS else None
    return Extraction(blocks=blocks, pages=pages)


def _node_blocks(node: dict) -> list[Block]:
    content = node["content"]
    node_type = content["node_type"]
    page = node.get("page")  # set for sheets (the sheet number) and PDFs only
    if node_type == "table":
        return [Block(kind=ElementKind.table, text=_grid_text(content.get("grid") or {}), page=page)]
    if node_type == "metadata_block":  # email headers
        lines = [f"{key}: {value}" for key, value in content.get("entries") or [] if str(value).strip()]
        return [Block(kind=ElementKind.email_header, text="\n".join(lines), page=page)]
    text = _plain(content.get("text") or "")
    if node_type in _STRUCTURAL or not text.strip():
        return []
    kind = _LAYER_KINDS.get(node.get("content_layer") or "") or _NODE_KINDS.get(node_type, ElementKind.other)
    if kind == ElementKind.title:
        return [Block(kind=kind, text=text, page=page, level=content.get("level") or 1)]
    # Email bodies come as one node with blank lines between paragraphs.
    return [Block(kind=kind, text=part, page=page) for part in _BLANK_LINE.split(text) if not _RULE_ONLY.match(part)]


def _plain(text: str) -> str:
    """kreuzberg leaves Markdown in HTML text: images become their alt text, links their text, bold plain."""
    return _MD_STRONG.sub(r"\1", _MD_LINK.sub(r"\1", _MD_IMAGE.sub(r"\1", text)))


def _grid_text(grid: dict) -> str:
    """Rows on lines, cells joined by ' | ' (kreuzberg repeats a merged cell's text in each cell)."""
    rows, cols = grid.get("rows") or 0, grid.get("cols") or 0
    table = [[""] * cols for _ in range(rows)]
    for cell in grid.get("cells") or []:
        row, col = cell.get("row", 0), cell.get("col", 0)
        if row < rows and col < cols:
            # Cells keep Markdown links even in plain output: "[text](url)" -> "text".
            table[row][col] = " ".join(_plain(cell.get("content") or "").split())
    return "\n".join(" | ".join(row) for row in table if any(row))
