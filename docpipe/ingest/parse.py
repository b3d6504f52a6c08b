"""Read one file: sniff, guard, then try its engines in order until one gives text.

Runs inside a parser worker process; everything here may be killed at any moment.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

from docpipe.config import IngestConfig
from docpipe.contracts import DocStatus
from docpipe.ingest.engines import load_engine
from docpipe.ingest.extraction import Extraction, ExtractionError, assemble, describe
from docpipe.ingest.routing import ROUTES
from docpipe.ingest.sniff import detect_format, extension_format

# Formats stored as zip containers, whose inflated size is checked before any parser opens them.
ZIP_CONTAINERS = {"docx", "docm", "dotx", "pptx", "pptm", "xlsx", "xlsm", "xlsb", "odt", "ods", "odp", "epub", "pages", "zip"}


def engines_for(fmt: str, cfg: IngestConfig) -> list[str]:
    return cfg.engines.get(fmt) or ROUTES[fmt]


def check_guards(path: Path, fmt: str, cfg: IngestConfig) -> list[str]:
    """Refuse files that would harm a parser (zip bombs) or cannot be read (PDFs that need a
    password); return warnings about files that can be read only in part."""
    if fmt in ZIP_CONTAINERS:
        check_zip_size(path, cfg)
    if fmt == "pdf":
        _check_pdf_password(path)
        return _pdf_truncation(path)
    return []


def _pdf_truncation(path: Path) -> list[str]:
    with path.open("rb") as fh:
        fh.seek(max(0, path.stat().st_size - 2048))
        tail = fh.read()
    return [] if b"%%EOF" in tail else ["truncated PDF (no end-of-file marker): text may be incomplete"]


def check_zip_size(path: Path, cfg: IngestConfig) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ExtractionError(f"damaged zip container: {exc}") from None
    inflated = sum(i.file_size for i in infos)
    if inflated > cfg.max_unzipped_mb * 2**20:
        raise ExtractionError(
            f"refused: would inflate to {inflated / 2**20:,.0f} MB (limit max_unzipped_mb={cfg.max_unzipped_mb}); possible zip bomb"
        )


def _check_pdf_password(path: Path) -> None:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(str(path), strict=False)
        # Owner-password-only ("copy-protected") PDFs open with an empty user password.
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionError("encrypted PDF: it needs a password to open; remove the password and re-run")
    except ExtractionError:
        raise
    except (PyPdfError, OSError, ValueError, KeyError, TypeError):
        return  # damaged PDFs are the engines' to judge: some still read


def parse_file(path: Path, cfg: IngestConfig, on_engine: Callable[[int, str, str], None] | None = None) -> dict:
    """Return the parsed fields of a Document (all but path, sha256 and size) as a dict."""
    fmt = extension_format(path)
    try:
        fmt = detect_format(path)
        warnings = check_guards(path, fmt, cfg)
    except ExtractionError as exc:
        status = DocStatus.skipped if str(exc).startswith("unsupported") else DocStatus.failed
        return {"format": fmt, "status": status.value, "reason": str(exc), "attempts": []}
    except OSError as exc:
        return {"format": fmt, "status": DocStatus.failed.value, "reason": f"cannot read: {exc.strerror or exc}", "attempts": []}
    return run_engines(path, fmt, cfg, on_engine=on_engine, warnings=warnings)


def run_engines(
    path: Path,
    fmt: str,
    cfg: IngestConfig,
    start_at: int = 0,
    on_engine: Callable[[int, str, str], None] | None = None,
    attempts: list[str] | None = None,
    warnings: list[str] | None = None,
) -> dict:
    """Try the format's engines from `start_at` on; the first that yields enough text wins.

    When none reaches `min_chars`, the engine that found the most text still gives the
    document (as partial): a spreadsheet of two emoji is short, not unreadable.
    """
    attempts, warnings = list(attempts or []), list(warnings or [])
    engines = engines_for(fmt, cfg)
    best: tuple[int, str, Extraction] | None = None
    for index in range(start_at, len(engines)):
        name = engines[index]
        if on_engine:
            on_engine(index, name, fmt)
        extraction = _try_engine(name, path, fmt, cfg, attempts)
        if extraction is None:
            continue
        chars, garbled = extraction.char_count(), _garbled(extraction)
        if chars >= cfg.min_chars and not garbled:
            attempts.append(f"{name}: ok")
            return _parsed(fmt, name, extraction, warnings + extraction.warnings, attempts)
        attempts.append(f"{name}: {garbled or f'no usable text ({chars} characters)'}")
        if chars and (best is None or chars > best[0]):
            best = (chars, name, extraction)
    if best is not None:
        chars, name, extraction = best
        problem = _garbled(extraction) or f"little text: {chars} characters (min_chars={cfg.min_chars})"
        return _parsed(fmt, name, extraction, [*warnings, problem], attempts)
    reason = "; ".join([*warnings, failure_reason(attempts)])
    return {"format": fmt, "status": DocStatus.failed.value, "reason": reason, "attempts": attempts}


def _garbled(extraction: Extraction) -> str | None:
    """A decoding gone wrong: replacement characters or NULs (UTF-16 read as 8-bit) in the text."""
    bad = sum(b.text.count("\ufffd") + b.text.count("\x00") for b in extraction.blocks)
    total = sum(len(b.text) for b in extraction.blocks)
    return f"garbled text ({bad} undecodable characters)" if bad >= max(3, total // 200) else None


def _try_engine(name: str, path: Path, fmt: str, cfg: IngestConfig, attempts: list[str]) -> Extraction | None:
    try:
        return load_engine(name).extract(path, fmt, cfg)
    except ExtractionError as exc:
        attempts.append(f"{name}: {exc}")
    except ImportError as exc:
        attempts.append(f"{name}: not installed ({exc.name or exc}); install docpipe[ingest]")
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # kreuzberg reports Rust panics as a BaseException
        attempts.append(f"{name}: {describe(exc)}")
    return None


def _parsed(fmt: str, engine: str, extraction: Extraction, notes: list[str], attempts: list[str]) -> dict:
    text, elements = assemble(extraction.blocks)
    return {
        "format": fmt,
        "engine": engine,
        "status": (DocStatus.partial if notes else DocStatus.ok).value,
        "reason": "; ".join(notes) or None,
        "text": text,
        "elements": [e.model_dump(mode="json") for e in elements],
        "pages": extraction.pages,
        "attempts": attempts,
    }


def failure_reason(attempts: list[str]) -> str:
    if not attempts:
        return "no engine could read it"
    return "; ".join(attempts)[:500]
