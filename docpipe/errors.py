"""One error family: every failure a user or the build loop's recovery agent sees is a `DocpipeError`
with the stage it came from, a kind a recovery step can act on, and a hint that says what to do."""

from __future__ import annotations

import errno
from enum import Enum


class ErrorKind(str, Enum):
    """What went wrong, in terms a recovery step can act on."""

    bad_input = "bad input"  # a file, option or record that cannot be used as given
    missing_input = "missing input"  # an earlier stage has not run (no documents.jsonl, no dataset, no run)
    damaged = "damaged"  # an artifact an earlier stage wrote was truncated or edited
    empty_dataset = "empty dataset"  # nothing left to train on after filtering
    out_of_memory = "out of memory"
    nan_loss = "nan loss"
    backend_unavailable = "backend unavailable"  # a package, GPU or model that is not here
    context_too_long = "context too long"
    provider_down = "provider down"  # the LLM provider failed for good (key, quota, server)
    disk_full = "disk full"  # or another write error: read-only folder, permissions
    quality_gate = "quality gate"  # a check of the result failed (the export's parity gate)


class DocpipeError(Exception):
    """A failure that stops one stage; `str()` is one line a user can act on."""

    stage: str = "docpipe"
    kind: ErrorKind = ErrorKind.bad_input

    def __init__(self, message: str, *, stage: str | None = None, kind: ErrorKind | None = None, hint: str | None = None):
        super().__init__(message)
        if stage is not None:
            self.stage = stage
        if kind is not None:
            self.kind = kind
        self.hint = hint

    def one_line(self) -> str:
        """The message, then the hint when the message does not already say what to do."""
        message = " ".join(str(self).split())
        return f"{message}; {self.hint}" if self.hint and self.hint not in message else message


def classify(exc: BaseException, stage: str) -> DocpipeError | None:
    """A `DocpipeError` for a raw exception whose kind is known (a full disk, out of memory), else None."""
    if isinstance(exc, DocpipeError):
        return exc
    text = str(exc)
    if isinstance(exc, MemoryError) or any(sign in text.lower() for sign in ("out of memory", "can't allocate memory")):
        return DocpipeError(
            f"out of memory: {_first_line(text)}",
            stage=stage,
            kind=ErrorKind.out_of_memory,
            hint="lower train.batch_size or train.max_seq_tokens, or close other programs",
        )
    if isinstance(exc, OSError) and exc.errno in _WRITE_ERRORS:  # what was finished before is kept by every stage
        return DocpipeError(
            f"could not write the {stage}: {exc}",
            stage=stage,
            kind=ErrorKind.disk_full,
            hint="free some space or choose another --out, then run the same command to resume",
        )
    return None


_WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:300]
