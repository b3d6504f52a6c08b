"""Plain-text formats (txt, csv/tsv, json/ndjson/yaml, md/rst/org/xml), decoded by charset detection and streamed."""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from docpipe.config import IngestConfig
from docpipe.contracts import ElementKind
from docpipe.ingest.extraction import Block, Extraction, ExtractionError, table_texts
from docpipe.ingest.sniff import utf16_without_bom

SAMPLE_BYTES = 64 * 1024  # what charset detection reads: enough to decide, cheap on a 50 MB file
MAX_PARAGRAPH = 16_000  # a longer run of lines is cut, so a log without blank lines is not one block
DATA_SOFT, DATA_HARD = 2_000, 8_000  # json/yaml/xml blocks close at the next entry past SOFT, at any line past HARD
JSON_PRETTY_MAX = 32 * 2**20  # single-line JSON blobs bigger than this stay as they are
_FALLBACK = "docpipe-cp1252"  # error handler: a stray byte in UTF-8 text is read as cp1252
# utf-32 before utf-16: the UTF-32 LE mark starts with the UTF-16 LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.+?)(?:\s+#+)?\s*$")
_ORG_HEADING = re.compile(r"^(\*+)\s+(.+?)\s*$")
_MD_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ORG_BEGIN = re.compile(r"^\s*#\+begin_(\w+)", re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:[-*+\u2022]|\d{1,3}[.)])\s+")
_ADORNMENT = re.compile(r"^([=\-~^\"'`*+#:.!$%&,/;<>?@\\_{|}])\1{2,}\s*$")
_CLOSERS = ("}", "]", "</")


def _cp1252_fallback(exc: UnicodeDecodeError) -> tuple[str, int]:
    # UTF-8 text with a few Latin-1/cp1252 bytes pasted in keeps its letters instead of U+FFFD.
    return exc.object[exc.start : exc.end].decode("cp1252", "replace"), exc.end


codecs.register_error(_FALLBACK, _cp1252_fallback)


def extract(path: Path, fmt: str, cfg: IngestConfig) -> Extraction:
    try:
        if fmt in ("csv", "tsv"):
            blocks = list(_table_blocks(path, fmt))
        elif fmt in ("json", "ndjson", "yaml", "xml"):
            blocks = _data_blocks(path, fmt)
        elif fmt in ("md", "rst", "org"):
            with open_text(path) as fh:
                blocks = list(_markup_blocks(fh, fmt))
        else:
            with open_text(path) as fh:
                blocks = [Block(ElementKind.text, "\n".join(run)) for run in _paragraphs(fh)]
    except csv.Error as exc:
        raise ExtractionError(f"malformed {fmt}: {exc}") from None
    except (UnicodeError, LookupError) as exc:
        raise ExtractionError(f"cannot decode the text: {exc}") from None
    return Extraction(blocks=blocks)


# --- decoding -------------------------------------------------------------------------------


def detect_encoding(head: bytes) -> tuple[str, str]:
    """Return (codec, error handler) for a file whose first bytes are `head`."""
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return codec, "replace"
    if utf16 := utf16_without_bom(head):
        return utf16, "replace"
    if _mostly_utf8(head):
        return "utf-8", _FALLBACK
    # Cut at a line end so a multi-byte character split by the sample does not skew the guess.
    sample = (head[: head.rfind(b"\n") + 1] or head) if len(head) == SAMPLE_BYTES else head
    return _legacy_encoding(sample), "replace"


def _legacy_encoding(sample: bytes) -> str:
    from charset_normalizer import from_bytes

    results = from_bytes(sample)
    best = results.best()
    if best is None:
        return "cp1252"
    # Short Western texts score the same in cp1250, cp1252 and cp1257, and the tie goes to the first
    # name (cp1250: 'naïve' became 'naďve'). cp1252 is the commoner legacy encoding: it wins ties.
    tied = [m for m in results if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    return "cp1252" if any("cp1252" in m.could_be_from_charset for m in tied) else best.encoding


def open_text(path: Path, newline: str | None = None) -> IO[str]:
    """Open `path` as text in its detected encoding; decoding is incremental, so memory stays bounded."""
    with path.open("rb") as fh:
        head = fh.read(SAMPLE_BYTES)
    codec, errors = detect_encoding(head)
    return path.open(encoding=codec, errors=errors, newline=newline)


def _mostly_utf8(head: bytes) -> bool:
    # final=False keeps a character cut in half at the end of the sample from counting as an error.
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(head, final=len(head) < SAMPLE_BYTES)
    bad = text.count("\ufffd")
    if not bad:
        return True
    multibyte = len(text) - len(text.encode("ascii", "ignore")) - bad
    return multibyte > bad  # well-formed characters outnumber broken bytes: UTF-8 with a few strays


# --- plain text and light markup --------------------------------------------------------------


def _paragraphs(lines: Iterable[str]) -> Iterator[list[str]]:
    """Yield runs of non-blank lines (right-stripped), cut when one grows past MAX_PARAGRAPH."""
    run: list[str] = []
    size = 0
    for line in lines:
        line = line.rstrip()
        if not line:
            if run:
                yield run
                run, size = [], 0
            continue
        run.append(line)
        size += len(line)
        if size >= MAX_PARAGRAPH:
            yield run
            run, size = [], 0
    if run:
        yield run


def _markup_blocks(lines: Iterable[str], fmt: str) -> Iterator[Block]:
    """Markdown/reST/Org: headings become titles, fenced code stays whole, the rest is paragraphs."""
    styles: list[str] = []  # reST underline styles seen so far
    para: list[str] = []
    code: list[str] | None = None
    fence = ""
    for raw in lines:
        line = raw.rstrip()
        if code is not None:
            if line.strip().lower().startswith(fence):
                yield Block(ElementKind.code, "\n".join(code))
                code = None
            else:
                code.append(line)
            continue
        opened = _fence(line, fmt)
        heading = None if opened else _heading(line, fmt)
        if opened or heading or not line.strip():
            yield from _para_blocks(para, fmt, styles)
            para = []
        if opened:
            code, fence = [], opened
        elif heading:
            yield Block(ElementKind.title, heading[1], level=heading[0])
        elif line.strip():
            para.append(line)
    yield from _para_blocks(para, fmt, styles)
    if code:
        yield Block(ElementKind.code, "\n".join(code))


def _fence(line: str, fmt: str) -> str:
    """The text that closes a code block opened by `line`, or '' when it opens none."""
    if fmt == "md" and (m := _MD_FENCE.match(line)):
        return m.group(1)
    if fmt == "org" and (m := _ORG_BEGIN.match(line)):
        return f"#+end_{m.group(1).lower()}"
    return ""


def _heading(line: str, fmt: str) -> tuple[int, str] | None:
    pattern = {"md": _MD_HEADING, "org": _ORG_HEADING}.get(fmt)
    m = pattern.match(line) if pattern else None
    return (len(m.group(1)), m.group(2)) if m else None


def _para_blocks(lines: list[str], fmt: str, styles: list[str]) -> Iterator[Block]:
    """Split a paragraph at underlined titles (reST, Markdown setext), then classify each piece."""
    start = 0
    for i in range(1, len(lines)):
        if i - 1 < start or not (found := _underlined(lines, i, fmt, styles)):
            continue
        level, top = found
        yield from _classify(lines[start:top])
        yield Block(ElementKind.title, lines[i - 1].strip(), level=level)
        start = i + 1
    yield from _classify(lines[start:])


def _underlined(lines: list[str], i: int, fmt: str, styles: list[str]) -> tuple[int, int] | None:
    """(level, first line of the title) when lines[i] underlines lines[i - 1]."""
    under = _ADORNMENT.match(lines[i])
    if not under or _ADORNMENT.match(lines[i - 1]):
        return None
    char = under.group(1)
    if fmt == "md":
        return ({"=": 1, "-": 2}[char], i - 1) if char in "=-" else None
    if fmt != "rst" or len(lines[i].strip()) < len(lines[i - 1].strip()):
        return None
    overline = i >= 2 and lines[i - 2].strip() == lines[i].strip()
    style = char + ("/" if overline else "")  # reST: an overlined style is a level of its own
    if style not in styles:
        styles.append(style)  # levels follow the order in which styles first appear
    return styles.index(style) + 1, i - 2 if overline else i - 1


def _classify(lines: list[str]) -> Iterator[Block]:
    if not lines:
        return
    if len(lines) >= 2 and all("|" in line for line in lines) and any(_is_rule(line) for line in lines):
        rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines if not _is_rule(line)]
        yield Block(ElementKind.table, "\n".join(" | ".join(row) for row in rows))
    elif _BULLET.match(lines[0]):
        items: list[list[str]] = []
        for line in lines:
            if _BULLET.match(line) or not items:
                items.append([_BULLET.sub("", line, count=1)])
            else:
                items[-1].append(line.strip())
        yield from (Block(ElementKind.list_item, " ".join(item)) for item in items)
    else:
        yield Block(ElementKind.text, "\n".join(lines))


def _is_rule(line: str) -> bool:
    """A table's separator row: '---|:---:' (Markdown), '|---+---|' (Org), '+----+' (reST)."""
    stripped = line.strip()
    return "--" in stripped and set(stripped) <= set("|:-+= ")


# --- delimited tables -------------------------------------------------------------------------


def _table_blocks(path: Path, fmt: str) -> Iterator[Block]:
    """CSV/TSV rows as table blocks, each starting with the header row."""
    csv.field_size_limit(2**31 - 1)  # csv-with-long-lines: cells far past the 128 KB default
    with open_text(path, newline="") as fh:
        dialect = _dialect(fh.read(SAMPLE_BYTES), fmt)
    with open_text(path, newline="") as fh:
        rows = _rows(csv.reader(fh, dialect))
        for text in table_texts(rows):
            yield Block(ElementKind.table, text)


def _rows(reader: Iterable[list[str]]) -> Iterator[list[str]]:
    """Non-empty rows with trailing empty cells dropped; blank cells inside a row keep their column."""
    for row in reader:
        cells = [" ".join(c.split()) for c in row]  # a quoted cell may hold newlines: one row per line
        while cells and not cells[-1]:
            cells.pop()
        if cells:
            yield cells


def _dialect(sample: str, fmt: str) -> type[csv.Dialect] | csv.Dialect:
    if fmt == "tsv":
        return csv.excel_tab
    sample = sample[: sample.rfind("\n") + 1] or sample  # a cut line confuses the sniffer
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        return csv.excel


# --- structured data --------------------------------------------------------------------------


def _data_blocks(path: Path, fmt: str) -> list[Block]:
    """JSON/NDJSON/YAML/XML kept as written, in code blocks cut between top-level entries."""
    with open_text(path) as fh:
        text = fh.read()
    if fmt == "json" and "\n" not in text.strip() and len(text) <= JSON_PRETTY_MAX:
        text = _pretty_json(text)
    lines = text.splitlines()
    entry = _entry_indent(lines, fmt)
    blocks: list[Block] = []
    chunk: list[str] = []
    size = 0
    for line in lines:
        stripped = line.lstrip()
        starts_entry = len(line) - len(stripped) <= entry and not stripped.startswith(_CLOSERS)
        if chunk and (not stripped or size >= DATA_HARD or (size >= DATA_SOFT and starts_entry)):
            blocks.append(Block(ElementKind.code, "\n".join(chunk)))
            chunk, size = [], 0
        if stripped:
            chunk.append(line.rstrip())
            size += len(line) + 1
    if chunk:
        blocks.append(Block(ElementKind.code, "\n".join(chunk)))
    return blocks


def _pretty_json(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return text  # not valid JSON after all: keep it as written


def _entry_indent(lines: list[str], fmt: str) -> int:
    """Indentation of top-level entries: inside the outer bracket/root element for JSON and XML."""
    indents = sorted({len(line) - len(line.lstrip()) for line in lines[:5000] if line.strip()})
    if not indents:
        return 0
    return indents[1] if fmt in ("json", "xml") and len(indents) > 1 else indents[0]
