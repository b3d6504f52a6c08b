"""Find the files under an input folder without following symlinks anywhere."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path


@dataclass
class FoundFile:
    rel: str  # path relative to the input folder, with forward slashes
    path: Path
    size: int
    skip_reason: str | None = None  # set when the file is reported but not read


def discover(root: Path, include_hidden: bool = False, max_file_mb: int | None = None) -> list[FoundFile]:
    """Every regular file under `root`, in path order; links and special files come with a reason."""
    root = root.resolve()
    found: list[FoundFile] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        for name in list(dirnames):
            entry = here / name
            if not include_hidden and name.startswith("."):
                dirnames.remove(name)
            elif entry.is_symlink():
                dirnames.remove(name)
                found.append(_found(root, entry, 0, _symlink_reason(root, entry)))
        for name in filenames:
            if include_hidden or not name.startswith("."):
                found.append(_inspect(root, here / name, max_file_mb))
    return sorted(found, key=lambda f: f.rel)


def _inspect(root: Path, path: Path, max_file_mb: int | None) -> FoundFile:
    try:
        info = path.lstat()
    except OSError as exc:
        return _found(root, path, 0, f"cannot read: {exc.strerror}")
    if stat.S_ISLNK(info.st_mode):
        return _found(root, path, 0, _symlink_reason(root, path))
    if not stat.S_ISREG(info.st_mode):
        return _found(root, path, 0, "not a regular file (pipe, socket or device): not read")
    if max_file_mb is not None and info.st_size > max_file_mb * 2**20:
        return _found(root, path, info.st_size, f"larger than max_file_mb={max_file_mb} ({info.st_size / 2**20:,.0f} MB): not read")
    return _found(root, path, info.st_size, None)


def _symlink_reason(root: Path, link: Path) -> str:
    try:
        target = link.resolve(strict=True)
    except (OSError, RuntimeError):
        return "symlink loop or broken link: not followed"
    if not target.is_relative_to(root):
        return f"symlink to {target}, outside the input folder: not followed"
    return f"symlink to {target.relative_to(root).as_posix()} inside the input folder: not followed (the target is read itself)"


def _found(root: Path, path: Path, size: int, reason: str | None) -> FoundFile:
    return FoundFile(path.relative_to(root).as_posix(), path, size, reason)
