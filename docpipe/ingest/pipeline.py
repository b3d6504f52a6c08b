"""`docpipe ingest`: a folder in, documents.jsonl and ingest_report.json out, resumable."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from docpipe.config import IngestConfig
from docpipe.contracts import Document, DocStatus, FormatSummary, IngestReport
from docpipe.ingest.discover import FoundFile, discover
from docpipe.ingest.sniff import extension_format
from docpipe.ingest.workers import ParserPool, Task
from docpipe.store import Store, sha256_file, stable_hash, write_json, write_jsonl

# Bump when parsing changes what it produces, so cached results are not reused.
INGEST_VERSION = 1
_CACHE = "ingest"
_WORKER_MEMORY = 1536 * 2**20  # a worker with unstructured loaded and a large file open

ProgressHook = Callable[[FoundFile, Document], None]


class IngestError(Exception):
    """The run itself cannot proceed (as opposed to one file failing)."""


def default_workers(cfg: IngestConfig) -> int:
    if cfg.workers:
        return cfg.workers
    by_memory = psutil.virtual_memory().available // _WORKER_MEMORY
    return max(1, min(os.cpu_count() or 1, by_memory))


def settings_key(cfg: IngestConfig) -> str:
    """What decides a file's parse, besides its bytes."""
    return stable_hash(INGEST_VERSION, cfg.model_dump(exclude={"workers", "include_hidden", "max_file_mb"}))


def run(input_dir: Path, out_dir: Path, cfg: IngestConfig, on_document: ProgressHook | None = None,
        on_start: Callable[[list[FoundFile]], None] | None = None) -> IngestReport:
    """Parse every file under `input_dir`; reuse results for files whose bytes and settings did not change."""
    input_dir = Path(input_dir)
    if input_dir.is_file():
        raise IngestError(f"{input_dir} is a file: give the folder that holds it (docpipe reads whole folders)")
    if not input_dir.is_dir():
        raise IngestError(f"input folder not found: {input_dir} (give a folder of documents)")
    _prepare_output(Path(out_dir))
    started = time.monotonic()
    store, settings = Store(out_dir), settings_key(cfg)
    found = discover(input_dir, cfg.include_hidden, cfg.max_file_mb)
    if on_start:
        on_start(found)
    documents: dict[str, Document] = {}
    todo: list[tuple[FoundFile, str]] = []
    reused = 0

    def finish(item: FoundFile, doc: Document) -> None:
        documents[item.rel] = doc
        if on_document:
            on_document(item, doc)

    for item in found:
        doc, sha = _without_parsing(item)
        if doc is None and (cached := store.get(_CACHE, stable_hash(sha, settings))) is not None:
            doc, reused = _document(item, sha, cached), reused + 1
        if doc is not None:
            finish(item, doc)
        else:
            todo.append((item, sha))

    def on_result(task: Task, result: dict) -> None:
        item, sha = todo[task.key]
        result.setdefault("format", task.fmt or extension_format(item.rel))
        result["seconds"] = round(time.monotonic() - (task.started or time.monotonic()), 3)
        store.put(_CACHE, stable_hash(sha, settings), result)
        finish(item, _document(item, sha, result))

    if todo:
        log_path = Path(out_dir) / "logs" / "parsers.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        pool = ParserPool(cfg, min(default_workers(cfg), len(todo)), log_path)
        pool.run((Task(i, item.path) for i, (item, _) in enumerate(todo)), on_result)
    ordered = [documents[item.rel] for item in found]
    report = _report(input_dir, ordered, reused, time.monotonic() - started)
    write_jsonl(Path(out_dir) / "documents.jsonl", ordered)
    write_json(Path(out_dir) / "ingest_report.json", report)
    write_json(Path(out_dir) / "ingest_config.json", cfg)
    return report


def _prepare_output(out_dir: Path) -> None:
    """Fail before any work when the output folder cannot be written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".docpipe-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise IngestError(f"cannot write the output folder {out_dir}: {exc.strerror or exc}; choose another --out") from None


def _without_parsing(item: FoundFile) -> tuple[Document | None, str]:
    """A Document for files that are reported without parsing, else (None, sha256)."""
    fmt = extension_format(item.rel)
    if item.skip_reason:
        return Document(path=item.rel, sha256="", size=item.size, format=fmt, status=DocStatus.skipped, reason=item.skip_reason), ""
    try:
        return None, sha256_file(item.path)
    except OSError as exc:
        return Document(path=item.rel, sha256="", size=item.size, format=fmt, status=DocStatus.failed, reason=f"cannot read: {exc.strerror or exc}"), ""


def _document(item: FoundFile, sha: str, result: dict) -> Document:
    return Document(path=item.rel, sha256=sha, size=item.size, **result)


def _report(input_dir: Path, docs: list[Document], reused: int, seconds: float) -> IngestReport:
    formats: dict[str, FormatSummary] = {}
    for doc in docs:
        summary = formats.setdefault(doc.format, FormatSummary())
        summary.files += 1
        setattr(summary, doc.status.value, getattr(summary, doc.status.value) + 1)
        if doc.engine:
            summary.engines[doc.engine] = summary.engines.get(doc.engine, 0) + 1
        if doc.reason and doc.reason not in summary.reasons:
            summary.reasons.append(doc.reason)
    return IngestReport(
        input_dir=str(input_dir),
        files=len(docs),
        parsed=sum(d.status in (DocStatus.ok, DocStatus.partial) for d in docs),
        reused=reused,
        bytes=sum(d.size for d in docs),
        seconds=round(seconds, 3),
        formats=dict(sorted(formats.items())),
        failures={d.path: d.reason or "" for d in docs if d.status in (DocStatus.failed, DocStatus.skipped)},
    )
