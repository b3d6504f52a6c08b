"""Shared fixtures: the real corpus beside the repository, and small configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests pin one thread per library: under CPU contention 2 threads were up to 100x slower here.
os.environ.setdefault("OMP_NUM_THREADS", "1")

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.fail(f"the shared corpus is missing: expected it at {CORPUS} (../shared beside the repository)")
    return CORPUS


@pytest.fixture(scope="session")
def bad_inputs(tmp_path_factory, corpus) -> Path:
    from tests.ingest.hostile_files import build

    return build(tmp_path_factory.mktemp("bad_inputs"), corpus)


@pytest.fixture(scope="session")
def ingested_corpus(corpus, tmp_path_factory):
    """The whole corpus ingested once per session: (report, output folder)."""
    from docpipe.config import IngestConfig
    from tests.stages import ingest_folder

    out = tmp_path_factory.mktemp("corpus-out")
    return ingest_folder(corpus, out, IngestConfig()), out
