"""Symlinks are never followed; special files and oversized files are reported, not read."""

from __future__ import annotations

import os

from docpipe.ingest.discover import discover


def test_symlinks_are_reported_not_followed(tmp_path):
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "real.txt").write_text("inside")
    outside = tmp_path / "secret.txt"
    outside.write_text("outside the input folder")
    os.symlink(outside, root / "escape.txt")
    os.symlink(root / "real.txt", root / "alias.txt")
    os.symlink(root / "loop_b.txt", root / "loop_a.txt")
    os.symlink(root / "loop_a.txt", root / "loop_b.txt")
    os.symlink(tmp_path, root / "sub" / "up")  # a directory link back out
    found = {f.rel: f for f in discover(root)}
    assert found["real.txt"].skip_reason is None
    assert "outside the input folder" in found["escape.txt"].skip_reason
    assert "inside the input folder" in found["alias.txt"].skip_reason
    assert "loop" in found["loop_a.txt"].skip_reason
    assert "outside the input folder" in found["sub/up"].skip_reason
    assert not any(rel.startswith("sub/up/") for rel in found)


def test_fifo_and_oversized_files_are_reported(tmp_path):
    os.mkfifo(tmp_path / "pipe.txt")  # reading it would block forever
    (tmp_path / "big.txt").write_bytes(b"x" * (2 * 2**20))
    found = {f.rel: f for f in discover(tmp_path, max_file_mb=1)}
    assert "not a regular file" in found["pipe.txt"].skip_reason
    assert "larger than max_file_mb=1" in found["big.txt"].skip_reason


def test_hidden_files_are_skipped_unless_asked(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("x")
    (tmp_path / ".notes.md").write_text("x")
    assert discover(tmp_path) == []
    assert {f.rel for f in discover(tmp_path, include_hidden=True)} == {".git/config", ".notes.md"}
