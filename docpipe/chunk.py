"""Cut documents into chunks that follow their structure and fit a token budget.

A chunk never crosses a heading: a title opens a new chunk and stays with the text under it.
Within a section, elements are packed until the budget is reached. An element longer than
the budget is cut: prose between sentences, a table (or code, a list) between its rows, so
no row is split; between words only as a last resort. Every chunk is an exact span of the document's text, so citations made
from it point into the ingested document.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from docpipe.contracts import Chunk, DocStatus, Document, ElementKind

TokenCounter = Callable[[str], int]
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")
_SPACE = re.compile(r"\s+")
_LINE = re.compile(r"\n")
_PROSE = {ElementKind.text, ElementKind.other, ElementKind.image_text, ElementKind.caption}


@dataclass(frozen=True)
class _Piece:
    start: int
    end: int
    kind: ElementKind
    page: int | None
    section: tuple[str, ...]
    tokens: int


def chunk_document(doc: Document, count_tokens: TokenCounter, max_tokens: int = 384) -> list[Chunk]:
    """Chunks of `doc` of at most about `max_tokens` tokens each (token counts of pieces are added up)."""
    if doc.status not in (DocStatus.ok, DocStatus.partial):
        return []
    groups: list[list[_Piece]] = []
    for piece in _pieces(doc, count_tokens, max_tokens):
        if not groups or _opens_chunk(groups[-1], piece, max_tokens):
            groups.append([])
        groups[-1].append(piece)
    return [_chunk(doc, group, count_tokens) for group in groups]


def _opens_chunk(current: list[_Piece], piece: _Piece, max_tokens: int) -> bool:
    body = [p for p in current if p.kind != ElementKind.title]
    if piece.kind == ElementKind.title:
        return bool(body)  # headings stay with the text below them
    if body and piece.section != body[-1].section:
        return True
    return sum(p.tokens for p in current) + piece.tokens > max_tokens


def _pieces(doc: Document, count_tokens: TokenCounter, max_tokens: int) -> Iterator[_Piece]:
    for el in doc.elements:
        section = tuple(el.section)
        tokens = count_tokens(el.text)
        if tokens <= max_tokens:
            yield _Piece(el.start, el.end, el.kind, el.page, section, tokens)
            continue
        boundary = _SENTENCE_END if el.kind in _PROSE else _LINE
        for start, end in _split(doc.text, el.start, el.end, boundary, count_tokens, max_tokens):
            yield _Piece(start, end, el.kind, el.page, section, count_tokens(doc.text[start:end]))


def _split(text: str, start: int, end: int, boundary: re.Pattern, count_tokens: TokenCounter, max_tokens: int) -> Iterator[tuple[int, int]]:
    """Spans within text[start:end] of about max_tokens at most, cut at `boundary` (or between words)."""
    units: list[tuple[int, int, int]] = []  # (start, end, tokens)
    for s, e in _units(text, start, end, boundary):
        tokens = count_tokens(text[s:e])
        if tokens <= max_tokens:
            units.append((s, e, tokens))
        else:  # a sentence or row over the budget: cut between words
            units += [(ws, we, count_tokens(text[ws:we])) for ws, we in _units(text, s, e, _SPACE)]
    span_start, span_end, span_tokens = units[0][0], units[0][0], 0
    for s, e, tokens in units:
        if span_tokens and span_tokens + tokens > max_tokens:
            yield span_start, span_end
            span_start, span_tokens = s, 0
        span_end, span_tokens = e, span_tokens + tokens
    yield span_start, span_end


def _units(text: str, start: int, end: int, separator: re.Pattern) -> list[tuple[int, int]]:
    units, position = [], start
    for match in separator.finditer(text, start, end):
        units.append((position, match.start()))
        position = match.end()
    units.append((position, end))
    return [(s, e) for s, e in units if e > s]


def _chunk(doc: Document, group: list[_Piece], count_tokens: TokenCounter) -> Chunk:
    start, end = group[0].start, group[-1].end
    text = doc.text[start:end]
    body = [p for p in group if p.kind != ElementKind.title] or group
    pages = sorted({p.page for p in group if p.page is not None})
    digest = hashlib.sha256(f"{doc.sha256}:{start}:{end}".encode()).hexdigest()[:16]
    return Chunk(
        id=digest,
        doc_id=doc.doc_id,
        path=doc.path,
        text=text,
        start=start,
        end=end,
        pages=pages,
        section=list(body[0].section),
        tokens=count_tokens(text),
    )
