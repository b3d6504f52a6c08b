"""Small real documents and chunks built in code, for the Q&A tests."""

from __future__ import annotations

import hashlib

from docpipe.contracts import Chunk, DocStatus, Document, Element, ElementKind


def document(
    path: str, paragraphs: list[tuple[str, int | None]], kind: ElementKind = ElementKind.text, section: list[str] | None = None
) -> Document:
    """A document whose elements are the given (text, page) paragraphs, joined by blank lines."""
    text, elements = "", []
    for body, page in paragraphs:
        if text:
            text += "\n\n"
        elements.append(Element(kind=kind, text=body, start=len(text), end=len(text) + len(body), page=page, section=section or []))
        text += body
    sha = hashlib.sha256(f"{path}:{text}".encode()).hexdigest()
    return Document(path=path, sha256=sha, size=len(text), format="txt", status=DocStatus.ok, text=text, elements=elements)


def whole_chunk(doc: Document, section: list[str] | None = None) -> Chunk:
    pages = sorted({el.page for el in doc.elements if el.page is not None})
    return Chunk(
        id=doc.sha256[:16],
        doc_id=doc.doc_id,
        path=doc.path,
        text=doc.text,
        start=0,
        end=len(doc.text),
        pages=pages,
        section=section or [],
        tokens=len(doc.text.split()),
    )
