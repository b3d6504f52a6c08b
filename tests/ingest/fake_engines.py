"""Fake engines that misbehave on purpose, named in `ingest.engines` as 'tests.ingest.fake_engines:NAME'."""

from __future__ import annotations

import os
import signal
import time

from docpipe.contracts import ElementKind
from docpipe.ingest.extraction import Block, Extraction


class FakePanic(BaseException):
    """Stands for pyo3_runtime.PanicException, which does not derive from Exception."""


def hang(path, fmt, cfg):
    time.sleep(3600)


def hog_memory(path, fmt, cfg):
    hoard = []
    while True:
        hoard.append(b"x" * (32 * 2**20))  # bytes are written, so the pages are really resident
        time.sleep(0.01)


def crash(path, fmt, cfg):
    os.kill(os.getpid(), signal.SIGSEGV)


def panic(path, fmt, cfg):
    raise FakePanic("called `Option::unwrap()` on a `None` value")


def echo(path, fmt, cfg):
    return Extraction([Block(ElementKind.text, f"read by the fallback engine: {path.name}")])


def slow_echo(path, fmt, cfg):
    time.sleep(1.0)
    return echo(path, fmt, cfg)
