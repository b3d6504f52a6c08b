"""Which engines read which format, best first.

The order comes from measurements on ../shared/corpus (shared/notes/ingest-engines-measured.md):
quality first, then speed. The next engine runs when one raises, crashes, times out or
returns (almost) no text. `IngestConfig.engines` overrides a row.
"""

from __future__ import annotations

ROUTES: dict[str, list[str]] = {
    "pdf": ["kreuzberg", "poppler"],  # kreuzberg 0.03 s/page and OCRs scanned PDFs; unstructured
    # reads PDFs only with unstructured-inference, which drags in a CUDA torch
    "docx": ["unstructured", "kreuzberg"],  # only unstructured keeps headers, footers and text boxes
    "docm": ["kreuzberg", "soffice"],  # unstructured rejects macro-enabled documents
    "dotx": ["kreuzberg", "soffice"],  # ... and templates
    "doc": ["kreuzberg", "unstructured"],  # native reader, no LibreOffice round trip
    "pptx": ["unstructured", "kreuzberg"],  # kreuzberg returns no elements for slides
    "pptm": ["unstructured", "kreuzberg"],
    "ppt": ["kreuzberg", "unstructured"],  # unstructured lost 85 % of one deck
    "xlsx": ["calamine", "unstructured", "kreuzberg"],  # a sheet per page, every cell
    "xlsm": ["calamine", "unstructured", "kreuzberg"],
    "xls": ["calamine", "unstructured", "kreuzberg"],
    "xlsb": ["calamine"],  # the others fail (kreuzberg panics)
    "odt": ["unstructured", "kreuzberg"],
    "ods": ["calamine", "kreuzberg"],  # unstructured does not read ODS
    "odp": ["soffice"],  # neither library reads ODP: LibreOffice converts it
    "pages": ["soffice"],  # Apple Pages: LibreOffice's import filter
    "rtf": ["unstructured", "kreuzberg"],
    "epub": ["kreuzberg", "unstructured"],  # same words, 0.1 s where unstructured takes 9 s on a book
    # kreuzberg keeps the spaces at line breaks that unstructured drops ("answerquestions");
    # a page it decodes wrongly (cp1252, UTF-16) is caught as garbled and goes to unstructured.
    "html": ["kreuzberg", "unstructured"],
    "htm": ["kreuzberg", "unstructured"],
    "xml": ["kreuzberg", "unstructured", "text"],
    "md": ["unstructured", "text"],  # kreuzberg turns Latin-1 into U+FFFD
    "rst": ["unstructured", "text"],
    "org": ["unstructured", "text"],
    "txt": ["text"],  # streamed with charset detection: unstructured needs > 300 s on 50 MB
    "csv": ["text"],  # the csv module keeps columns under blank headers (kreuzberg drops them)
    "tsv": ["text"],
    "json": ["text"],
    "ndjson": ["text"],
    "yaml": ["text"],
    "eml": ["kreuzberg", "unstructured"],  # headers, and the body text unstructured drops
    "msg": ["kreuzberg", "unstructured"],  # unstructured garbles Big5 bodies
    "png": ["tesseract", "kreuzberg"],
    "jpg": ["tesseract", "kreuzberg"],
    "tiff": ["tesseract", "kreuzberg"],  # every frame of a multi-page TIFF (the others read page 1)
    "bmp": ["tesseract", "kreuzberg"],
    "gif": ["tesseract"],
    "webp": ["tesseract"],
    "heic": ["tesseract"],  # through pi-heif; kreuzberg does not read HEIC
    "zip": ["zip"],  # each member is routed by its own format
}
