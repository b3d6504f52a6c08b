"""Run configuration: YAML in configs/ -> pydantic (unknown keys fail) -> CLI overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"


class IngestConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workers: Annotated[int | None, Field(ge=1, description="Parser processes; empty = one per core, bounded by free memory.")] = None
    timeout_s: Annotated[float, Field(gt=0, description="Seconds one file may take before its worker is killed and the file reported.")] = 300
    max_rss_mb: Annotated[int, Field(ge=256, description="Memory one parser process (with its children) may use before it is killed.")] = 6144
    max_file_mb: Annotated[int, Field(ge=1, description="Files larger than this are skipped with a reason.")] = 512
    max_unzipped_mb: Annotated[int, Field(ge=1, description="Largest total uncompressed size accepted for a zip or an Office/OpenDocument package (zip-bomb guard).")] = 512
    max_zip_members: Annotated[int, Field(ge=1, description="Most members read from one zip archive.")] = 2000
    min_chars: Annotated[int, Field(ge=0, description="An engine that yields fewer non-space characters than this has failed; the next engine is tried.")] = 16
    ocr: Annotated[bool, Field(description="OCR images and scanned PDF pages with Tesseract.")] = True
    ocr_languages: Annotated[str, Field(description="Tesseract language codes, '+'-joined (e.g. 'eng+deu').")] = "eng"
    engines: Annotated[dict[str, list[str]], Field(description="Per-format engine order overriding the built-in routing, e.g. {pdf: [unstructured]}.")] = {}
    include_hidden: Annotated[bool, Field(description="Also read files and folders whose names start with a dot.")] = False


class DocpipeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ingest: Annotated[IngestConfig, Field(description="Reading documents.")] = IngestConfig()


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message says what to fix."""


def _merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> DocpipeConfig:
    """Load YAML (the default preset when no path is given), then apply CLI overrides.

    Overrides use dotted keys (`{"ingest.workers": 2}`); None values are ignored so that
    unset CLI options do not override the file.
    """
    path = Path(path) if path else DEFAULT_CONFIG
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        if path != DEFAULT_CONFIG:
            raise ConfigError(f"config file not found: {path}") from None
        data = {}  # installed from a wheel, without the repository's configs/: same values (tested)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        nested: Any = value
        for part in reversed(dotted.split(".")):
            nested = {part: nested}
        data = _merge(data, nested)
    try:
        return DocpipeConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']} ({exc.error_count()} problem(s) in all)") from None
