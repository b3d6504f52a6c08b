"""Atomic files and a content-addressed cache: nothing half-written, nothing computed twice."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp file in the same folder and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def atomic_file(dest: Path) -> Iterator[Path]:
    """Yield a temporary path next to `dest` for a writer that takes a path (a GGUF writer, llama.cpp's
    quantizer); when the block ends without error it replaces `dest`. A crash leaves `dest` as it was."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextmanager
def atomic_folder(dest: Path) -> Iterator[Path]:
    """Yield a temporary folder next to `dest` to fill; when the block ends without error it
    replaces `dest` whole. A crash or kill leaves `dest` as it was (and at most a dot-folder)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        yield work
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        if dest.exists():  # rename cannot replace a non-empty folder: move the old one aside first
            shutil.rmtree(old, ignore_errors=True)
            dest.rename(old)
        work.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_json(path: Path, obj: Any) -> None:
    data = obj.model_dump(mode="json") if isinstance(obj, BaseModel) else obj
    atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def write_jsonl(path: Path, records: Iterable[BaseModel | dict]) -> None:
    lines = (
        (r.model_dump_json() if isinstance(r, BaseModel) else json.dumps(r, ensure_ascii=False)) + "\n"
        for r in records
    )
    atomic_write_text(path, "".join(lines))


def iter_jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def stable_hash(*parts: Any) -> str:
    """SHA-256 of canonical JSON: the same inputs and settings always give the same key."""
    blob = json.dumps(
        [p.model_dump(mode="json") if isinstance(p, BaseModel) else p for p in parts],
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class JsonCache:
    """Content-addressed JSON records, `root/<key[:2]>/<key>.json`, each written atomically."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        """The record, or None when it is missing or unreadable (a torn or foreign file is a miss)."""
        try:
            return json.loads(self._path(key).read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None

    def put(self, key: str, value: BaseModel | dict) -> None:
        data = value.model_dump_json() if isinstance(value, BaseModel) else json.dumps(value, ensure_ascii=False)
        atomic_write_text(self._path(key), data)


class Store:
    """The output folder's cache: one JsonCache per namespace, `OUT/cache/<namespace>/`."""

    def __init__(self, out_dir: Path):
        self.root = Path(out_dir) / "cache"

    def get(self, namespace: str, key: str) -> dict | None:
        return JsonCache(self.root / namespace).get(key)

    def put(self, namespace: str, key: str, value: BaseModel | dict) -> None:
        JsonCache(self.root / namespace).put(key, value)
