"""Read PDFs with poppler's pdftotext: an independent second reader for PDFs kreuzberg rejects.

unstructured cannot stand in here: its PDF path needs unstructured-inference, whose
torchvision pulls a multi-GB CUDA torch. Poppler is tolerant of damaged cross-reference
tables and keeps pages apart with form feeds.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from docpipe.config import IngestConfig
from docpipe.contracts import ElementKind
from docpipe.ingest.extraction import Block, Extraction, ExtractionError

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def extract(path: Path, fmt: str, cfg: IngestConfig) -> Extraction:
    exe = shutil.which("pdftotext")
    if exe is None:
        raise ExtractionError("poppler's pdftotext is not installed; install poppler-utils (scripts/setup.sh does)")
    try:
        proc = subprocess.run(
            [exe, "-enc", "UTF-8", "-eol", "unix", str(path), "-"],
            capture_output=True,
            timeout=cfg.timeout_s * 0.8,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ExtractionError(f"pdftotext took over {cfg.timeout_s * 0.8:g} s") from None
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ExtractionError(f"pdftotext could not read it: {message[-1] if message else f'exit code {proc.returncode}'}")
    pages = proc.stdout.decode("utf-8", "replace").split("\f")
    if pages and not pages[-1].strip():
        pages.pop()  # pdftotext ends every page, the last one too, with a form feed
    blocks = [
        Block(ElementKind.text, paragraph, page=number)
        for number, page in enumerate(pages, start=1)
        for paragraph in _PARAGRAPH_BREAK.split(page)
        if paragraph.strip()
    ]
    return Extraction(blocks=blocks, pages=len(pages) or None)
