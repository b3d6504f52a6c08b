"""What an engine returns, and how its blocks become a Document's exact text and elements."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field

from docpipe.contracts import Element, ElementKind

# Elements are joined with a blank line, so paragraphs stay paragraphs in Document.text.
ELEMENT_SEPARATOR = "\n\n"
_SPACE_RUN = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


@dataclass
class Block:
    """One piece of text as an engine saw it, before offsets are assigned."""

    kind: ElementKind
    text: str
    page: int | None = None
    level: int | None = None  # heading depth for titles: 1 is the top level
    section: list[str] | None = None  # an explicit path (a zip member, a sheet) under which headings nest


@dataclass
class Extraction:
    blocks: list[Block] = field(default_factory=list)
    pages: int | None = None
    warnings: list[str] = field(default_factory=list)

    def char_count(self) -> int:
        return sum(visible_chars(b.text) for b in self.blocks)


# Data rows per table block: small enough for a chunk, and each block repeats the header row
# so that it stands alone.
TABLE_ROWS = 50


def table_texts(rows: Iterator[list[str]], size: int = TABLE_ROWS) -> Iterator[str]:
    """Split a table into texts of `size` rows ("a | b" per line), each starting with the header."""
    header = next(rows, None)
    batch = [header] if header else []
    sent = False
    for row in rows:
        batch.append(row)
        if len(batch) > size:
            yield _table_text(batch)
            batch, sent = [header], True
    if len(batch) > 1 or (batch and not sent):
        yield _table_text(batch)


def _table_text(rows: list[list[str]]) -> str:
    return "\n".join(" | ".join(row) for row in rows)


_WORD = re.compile(r"[^\W\d_]+")


def ocr_noise(text: str) -> bool:
    """True when OCR output is specks read as letters (a photo, a drawing), not words.

    Real text, even a heading, has words of four letters or more; OCR noise from a photo is
    mostly one- and two-letter fragments ("oe a pe ee ge r ole ht he yy").
    """
    # Single letters say nothing either way ("n=3" in a table, "a" in a sentence, specks in a photo).
    words = [w for w in _WORD.findall(text) if len(w) >= 2]
    # Hangul and CJK words are short: two characters already make one.
    real = sum(len(w) >= 4 or not w.isascii() for w in words)
    return not words or real < max(1, len(words) // 4)


def visible_chars(text: str) -> int:
    """Characters that are not whitespace: what `min_chars` counts."""
    return len("".join(text.split()))


def describe(exc: BaseException) -> str:
    """'Type: first line of the message', the one-line form of an unexpected exception."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__


class ExtractionError(Exception):
    """An engine could not read a file; the message is the one-line reason users see."""


def clean_text(text: str, keep_indent: bool = False) -> str:
    """Normalise what parsers emit: NFC, no control characters, single spaces, no trailing blanks.

    Code keeps its indentation (`keep_indent`): in JSON, YAML or source it carries meaning.
    """
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    if keep_indent:
        lines = [line.rstrip() for line in text.split("\n")]
        return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")
    lines = [_SPACE_RUN.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def assemble(blocks: list[Block]) -> tuple[str, list[Element]]:
    """Join blocks into one text, giving each element exact offsets and its heading path."""
    parts: list[str] = []
    elements: list[Element] = []
    headings: list[tuple[int, str]] = []  # (level, title) stack
    base: list[str] = []
    offset = 0
    for block in blocks:
        text = clean_text(block.text, keep_indent=block.kind == ElementKind.code)
        if not text.strip():
            continue
        if block.section is not None and block.section != base:
            base, headings = list(block.section), []
        if block.kind == ElementKind.title:
            level = block.level or 1
            while headings and headings[-1][0] >= level:
                headings.pop()
            section = base + [h for _, h in headings]
            headings.append((level, text.replace("\n", " ")))
        else:
            section = base + [h for _, h in headings]
        if parts:
            parts.append(ELEMENT_SEPARATOR)
            offset += len(ELEMENT_SEPARATOR)
        parts.append(text)
        elements.append(Element(kind=block.kind, text=text, start=offset, end=offset + len(text), page=block.page, section=section))
        offset += len(text)
    return "".join(parts), elements
