"""`docpipe ingest`: a folder in, documents.jsonl and ingest_report.json out, resumable."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil

from docpipe.config import IngestConfig
from docpipe.contracts import DocStatus, Document, FormatSummary, IngestReport
from docpipe.errors import DocpipeError, ErrorKind
from docpipe.events import EventSink, StageEvent, ignore
from docpipe.ingest.discover import FoundFile, discover
from docpipe.ingest.sniff import extension_format
from docpipe.ingest.workers import ParserPool, Task
from docpipe.stage import IngestInputs, matches_fingerprint, record_fingerprint
from docpipe.store import JsonCache, sha256_file, stable_hash, write_json, write_jsonl

# Bump when parsing changes what it produces, so cached results are not reused.
INGEST_VERSION = 1
_WORKER_MEMORY = 1536 * 2**20  # a worker with unstructured loaded and a large file open

STAGE = "ingest"


class IngestError(DocpipeError):
    """The run itself cannot proceed (as opposed to one file failing)."""

    stage = STAGE


def default_workers(cfg: IngestConfig) -> int:
    if cfg.workers:
        return cfg.workers
    by_memory = psutil.virtual_memory().available // _WORKER_MEMORY
    return max(1, min(os.cpu_count() or 1, by_memory))


def settings_key(cfg: IngestConfig) -> str:
    """What decides a file's parse, besides its bytes."""
    return stable_hash(INGEST_VERSION, cfg.model_dump(exclude={"workers", "include_hidden", "max_file_mb"}))


def fingerprint(inputs: IngestInputs, cfg: IngestConfig) -> str:
    """The folder's listing (path, size, modification time) and the settings: no file is read."""
    _check_input(Path(inputs.source))
    listing = [
        (f.rel, f.size, f.path.stat().st_mtime_ns if not f.skip_reason else None)
        for f in discover(Path(inputs.source), cfg.include_hidden, cfg.max_file_mb)
    ]
    return stable_hash(INGEST_VERSION, str(Path(inputs.source).resolve()), listing, cfg)


def is_current(inputs: IngestInputs, cfg: IngestConfig) -> bool:
    layout = inputs.layout
    return matches_fingerprint(layout, STAGE, fingerprint(inputs, cfg), layout.documents, layout.ingest_report)


def run(inputs: IngestInputs, cfg: IngestConfig, *, events: EventSink = ignore) -> IngestReport:
    """Parse every file under `inputs.source`; reuse results for files whose bytes and settings did not change."""
    input_dir, layout = Path(inputs.source), inputs.layout
    _check_input(input_dir)
    _prepare_output(layout.root)
    started = time.monotonic()
    store, settings = JsonCache(layout.ingest_cache), settings_key(cfg)
    found = discover(input_dir, cfg.include_hidden, cfg.max_file_mb)
    progress = _Progress(found, events)
    documents: dict[str, Document] = {}
    todo: list[tuple[FoundFile, str]] = []
    reused = 0

    def finish(item: FoundFile, doc: Document) -> None:
        documents[item.rel] = doc
        progress.done(item, doc)

    for item in found:
        doc, sha = _without_parsing(item)
        if doc is None and (cached := store.get(stable_hash(sha, settings))) is not None:
            doc, reused = _document(item, sha, cached), reused + 1
        if doc is not None:
            finish(item, doc)
        else:
            todo.append((item, sha))

    def on_result(task: Task, result: dict) -> None:
        item, sha = todo[task.key]
        result.setdefault("format", task.fmt or extension_format(item.rel))
        result["seconds"] = round(time.monotonic() - (task.started or time.monotonic()), 3)
        store.put(stable_hash(sha, settings), result)
        finish(item, _document(item, sha, result))

    if todo:
        layout.parser_log.parent.mkdir(parents=True, exist_ok=True)
        pool = ParserPool(cfg, min(default_workers(cfg), len(todo)), layout.parser_log)
        pool.run((Task(i, item.path) for i, (item, _) in enumerate(todo)), on_result)
    ordered = [documents[item.rel] for item in found]
    report = _report(input_dir, ordered, reused, time.monotonic() - started)
    write_jsonl(layout.documents, ordered)
    write_json(layout.ingest_report, report)
    write_json(layout.ingest_config, cfg)
    record_fingerprint(layout, STAGE, fingerprint(inputs, cfg))
    return report


class _Progress:
    """Files done of all, as events; bytes travel in the metrics so a bar can weigh big files more."""

    def __init__(self, found: list[FoundFile], events: EventSink):
        self.events, self.files, self.done_files, self.done_bytes = events, len(found), 0, 0
        self.total_bytes = sum(f.size for f in found)
        events(
            StageEvent(stage=STAGE, step=0, total=self.files, message="reading", metrics={"bytes_done": 0, "bytes_total": self.total_bytes})
        )

    def done(self, item: FoundFile, doc: Document) -> None:
        self.done_files += 1
        self.done_bytes += item.size
        mark = {DocStatus.ok: "", DocStatus.partial: " (partial)"}.get(doc.status, f" ({doc.status.value})")
        self.events(
            StageEvent(
                stage=STAGE,
                step=self.done_files,
                total=self.files,
                message=f"{item.rel}{mark}",
                metrics={"bytes_done": self.done_bytes, "bytes_total": self.total_bytes},
            )
        )


def _check_input(input_dir: Path) -> None:
    if input_dir.is_file():
        raise IngestError(f"{input_dir} is a file: give the folder that holds it (docpipe reads whole folders)")
    if not input_dir.is_dir():
        raise IngestError(f"input folder not found: {input_dir} (give a folder of documents)", kind=ErrorKind.missing_input)


def _prepare_output(out_dir: Path) -> None:
    """Fail before any work when the output folder cannot be written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".docpipe-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise IngestError(
            f"cannot write the output folder {out_dir}: {exc.strerror or exc}; choose another --out", kind=ErrorKind.disk_full
        ) from None


def _without_parsing(item: FoundFile) -> tuple[Document | None, str]:
    """A Document for files that are reported without parsing, else (None, sha256)."""
    fmt = extension_format(item.rel)
    if item.skip_reason:
        return Document(path=item.rel, sha256="", size=item.size, format=fmt, status=DocStatus.skipped, reason=item.skip_reason), ""
    try:
        return None, sha256_file(item.path)
    except OSError as exc:
        return Document(
            path=item.rel, sha256="", size=item.size, format=fmt, status=DocStatus.failed, reason=f"cannot read: {exc.strerror or exc}"
        ), ""


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
