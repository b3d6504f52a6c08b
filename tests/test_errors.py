"""One error family: every failure a user sees is a DocpipeError with a stage, a kind a recovery step
can act on, and one line that says what to do."""

from __future__ import annotations

import errno

import pytest

from docpipe.config import ConfigError
from docpipe.errors import DocpipeError, ErrorKind, classify
from docpipe.ingest.pipeline import IngestError
from docpipe.qa.generate import GenerateError
from docpipe.runtime.pretrained import BaseModelError
from export import ExportError
from trainers.backend import BackendUnavailable
from trainers.data import DatasetError
from trainers.train import TrainError


@pytest.mark.parametrize(
    ("error", "stage", "kind"),
    [
        (IngestError, "ingest", ErrorKind.bad_input),
        (GenerateError, "generate", ErrorKind.bad_input),
        (DatasetError, "train", ErrorKind.missing_input),
        (BackendUnavailable, "train", ErrorKind.backend_unavailable),
        (BaseModelError, "train", ErrorKind.backend_unavailable),
        (TrainError, "train", ErrorKind.bad_input),
        (ExportError, "export", ErrorKind.bad_input),
        (ConfigError, "config", ErrorKind.bad_input),
    ],
)
def test_every_stage_error_is_a_docpipe_error_with_its_stage_and_kind(error, stage, kind):
    exc = error("something is wrong")
    assert isinstance(exc, DocpipeError) and (exc.stage, exc.kind) == (stage, kind)


def test_a_kind_given_at_the_raise_wins_and_the_hint_joins_the_line():
    exc = GenerateError("none of the documents has text", kind=ErrorKind.empty_dataset, hint="check ingest_report.json")
    assert exc.kind is ErrorKind.empty_dataset and exc.stage == "generate"
    assert exc.one_line() == "none of the documents has text; check ingest_report.json"
    assert DocpipeError("run `docpipe ingest` first", hint="docpipe ingest").one_line() == "run `docpipe ingest` first"
    assert "\n" not in DocpipeError("two\nlines").one_line()


def test_raw_failures_of_known_kinds_are_classified():
    full = classify(OSError(errno.ENOSPC, "No space left on device"), "export")
    assert full.kind is ErrorKind.disk_full and full.stage == "export"
    assert "could not write the export" in full.one_line() and "No space left" in full.one_line()
    assert classify(MemoryError(), "train").kind is ErrorKind.out_of_memory
    assert classify(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), "train").kind is ErrorKind.out_of_memory
    assert classify(ValueError("a bug"), "train") is None  # an unknown failure keeps its traceback
    known = DatasetError("no train.jsonl")
    assert classify(known, "train") is known
