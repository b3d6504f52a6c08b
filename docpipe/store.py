"""Atomic files and a content-addressed cache: nothing half-written, nothing computed twice."""

from __future__ import annotations

import errno
import functools
import hashlib
import itertools
import json
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers, and a crash, see the old file or the new one, never half of one.

    The bytes go to a temp file in the same folder, which is fsynced, renamed over `path`, and then the folder
    is fsynced too: without that last step a power loss can undo the rename, or keep it but lose the data.

    Args:
        path: The file to write; its folder is created when missing.
        data: The whole new content.
    """
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
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` as UTF-8, atomically and durably (see `atomic_write_bytes`).

    Args:
        path: The file to write; its folder is created when missing.
        text: The whole new content.
    """
    atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def atomic_file(dest: Path) -> Iterator[Path]:
    """Yield a temporary path next to `dest` for a writer that takes a path (a GGUF writer, llama.cpp's quantizer).

    When the block ends without error the finished file is fsynced, renamed over `dest`, and the folder fsynced,
    so after a crash or power loss `dest` is the old file or the whole new one. When the block raises, `dest` is
    left as it was. Either way no `.partial` temp file is left behind.

    Args:
        dest: The file to produce; its folder is created when missing.

    Yields:
        The temp path to write to (it exists, empty; the writer may replace it).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial")
    os.close(fd)
    try:
        yield Path(tmp)
        _fsync_file(Path(tmp))  # the writer closed it without fsync: its data may still be only in the page cache
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextmanager
def atomic_folder(dest: Path) -> Iterator[Path]:
    """Yield a temporary folder next to `dest` to fill; when the block ends without error it replaces `dest` whole.

    Every file in the filled folder is fsynced before the swap and the parent folder after it. On Linux the swap
    is one `renameat2(RENAME_EXCHANGE)`, so `dest` always exists: readers see the old folder or the new one. Where
    exchange is unavailable (macOS, old kernels or libc, some filesystems) it falls back to two renames: `dest`
    to `.NAME.old-PID`, then the new folder to `dest`. A crash between the two leaves no `dest` but that
    `.NAME.old-PID` folder; the next `atomic_folder(dest)` call renames it back before doing anything else.

    When the block raises, `dest` is left as it was and the temp folder removed. A crash or kill leaves `dest`
    as it was (or recoverable as above) and at most a dot-folder. The first creation is a plain rename.

    Args:
        dest: The folder to produce; its parent is created when missing.

    Yields:
        An empty temp folder in the same parent, to fill.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    _recover_folder(dest)
    work = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        yield work
        _fsync_tree(work)
        retired = _swap_in(work, dest)
        _fsync_dir(dest.parent)  # the swap is durable before the only other copy is deleted
        if retired is not None:
            _remove(retired)
    finally:
        _remove(work)  # the unfinished folder after a failure; after an exchange, the old content


# Linux renameat2(2): AT_FDCWD makes the paths relative to the working folder, as rename does.
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
# Errors meaning "this kernel, filesystem or sandbox cannot exchange", not "this rename is wrong": fall back.
# EPERM is a seccomp filter refusing unknown syscalls; a real permission problem fails the fallback renames too.
_NO_EXCHANGE = {errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM}


def _fsync_file(path: Path) -> None:
    """Flush one file's data to disk (read-only open is enough for fsync on POSIX; Windows wants write access)."""
    fd = os.open(path, os.O_RDWR if os.name == "nt" else os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    """Flush a folder's entries, so a rename or new file in it survives a power loss."""
    if os.name == "nt":  # folders cannot be opened, nor fsynced, on Windows: NTFS journals renames itself
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):  # some network filesystems refuse it
            raise
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """Fsync every regular file under `root`, then every folder bottom-up, so the whole tree is on disk."""
    for folder, _dirs, files in os.walk(root, topdown=False):
        for name in files:
            path = Path(folder) / name
            if stat.S_ISREG(path.lstat().st_mode):  # a symlink's target is not ours to flush, and may not exist
                _fsync_file(path)
        _fsync_dir(Path(folder))


def _remove(path: Path) -> None:
    """Delete a folder tree, a file or a symlink, ignoring what is already gone."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@functools.lru_cache(maxsize=1)
def _renameat2() -> Any:
    """libc's `renameat2`, or None where there is none (not Linux, glibc before 2.28, no ctypes)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        func = ctypes.CDLL(None, use_errno=True).renameat2
    except (ImportError, OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step; False when this system cannot, so the caller falls back."""
    func = _renameat2()
    if func is None:
        return False
    import ctypes

    if func(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in _NO_EXCHANGE:
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def _old_name(dest: Path) -> Path:
    """Where the two-rename fallback parks the old `dest` while the new one moves in."""
    return dest.with_name(f".{dest.name}.old-{os.getpid()}")


def _old_folders(dest: Path) -> list[Path]:
    """Every `.NAME.old-PID` left beside `dest`, oldest first (a rename updates ctime, so the last is the newest)."""
    prefix = f".{dest.name}.old-"
    found = [Path(entry.path) for entry in os.scandir(dest.parent) if entry.name.startswith(prefix) and entry.name[len(prefix) :].isdigit()]
    return sorted(found, key=lambda path: path.lstat().st_ctime)


def _restore(old: Path, dest: Path) -> None:
    """Rename a parked old folder back to `dest` when `dest` is missing; a failure leaves it for the next call."""
    if os.path.lexists(dest):
        return
    try:
        os.rename(old, dest)
    except OSError:
        return
    _fsync_dir(dest.parent)


def _recover_folder(dest: Path) -> None:
    """Undo a fallback swap cut short between its renames: `.NAME.old-PID` and no `dest` means that folder is `dest`.

    Leftovers found while `dest` exists are from swaps that finished but did not get to delete the old folder.
    """
    leftovers = _old_folders(dest)
    if leftovers and not os.path.lexists(dest):
        _restore(leftovers.pop(), dest)
    for stale in leftovers:
        if os.path.lexists(dest):
            _remove(stale)


def _swap_in(work: Path, dest: Path) -> Path | None:
    """Put the filled `work` folder at `dest`; return the path now holding the old content to delete, if any."""
    if not os.path.lexists(dest):
        os.rename(work, dest)  # first creation: nothing to keep, nothing to swap
        return None
    if _exchange(work, dest):
        return work
    old = _old_name(dest)
    _remove(old)
    os.rename(dest, old)  # rename cannot replace a non-empty folder: move the old one aside first
    try:
        os.rename(work, dest)
    except BaseException:
        _restore(old, dest)  # in-process failure: put the old folder back now rather than at the next call
        raise
    return old


def write_json(path: Path, obj: Any) -> None:
    data = obj.model_dump(mode="json") if isinstance(obj, BaseModel) else obj
    atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def write_jsonl(path: Path, records: Iterable[BaseModel | dict]) -> None:
    lines = ((r.model_dump_json() if isinstance(r, BaseModel) else json.dumps(r, ensure_ascii=False)) + "\n" for r in records)
    atomic_write_text(path, "".join(lines))


def iter_jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


class RecordError(ValueError):
    """A JSONL line that is not JSON, or not the record its file holds. The message is one line,
    'line N is not ...', for the reading stage to prefix with the file and follow with what to run."""

    def __init__(self, line: int, problem: str):
        super().__init__(f"line {line} {problem}")
        self.line = line


def parse_records(lines: Iterable[str], record: type[M]) -> Iterator[M]:
    """Each non-blank line validated as `record`, lazily; the first bad line raises RecordError."""
    name = re.sub(r"(?<!^)(?=[A-Z])", " ", record.__name__).lower()  # TrainingRecord -> "training record"
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RecordError(number, f"is not JSON ({exc.msg})") from None
        try:
            parsed = record.model_validate(data)
        except ValidationError as exc:
            raise RecordError(number, f"is not a {name} ({first_problem(exc)})") from None
        yield parsed


def read_records(path: Path, record: type[M], limit: int | None = None) -> list[M]:
    """The first `limit` (default: all) records of a JSONL file, validated; RecordError on a bad line."""
    with path.open(encoding="utf-8") as fh:
        return list(itertools.islice(parse_records(fh, record), limit))


def first_problem(exc: ValidationError) -> str:
    """The first validation error as 'field.path: message', for one-line errors."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


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


def remove_partials(root: Path) -> int:
    """Delete the `.partial` temp files an `atomic_file` writer left when its process was killed (kill -9 skips the
    cleanup): a killed GGUF export leaves hundreds of MB. Called when a stage that writes such files starts. Bytes freed."""
    freed = 0
    for path in Path(root).rglob(".*.partial") if Path(root).is_dir() else []:
        if path.is_file():
            freed += path.stat().st_size
            path.unlink(missing_ok=True)
    return freed
