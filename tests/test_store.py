"""Atomic writes and the content-addressed cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from docpipe import store
from docpipe.store import JsonCache, atomic_file, atomic_folder, atomic_write_text, stable_hash


def test_atomic_write_leaves_the_old_file_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    atomic_write_text(target, "old")

    def boom(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"], "no temp file may be left behind"


def test_atomic_file_replaces_only_a_finished_file(tmp_path):
    target = tmp_path / "model.gguf"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_file(target) as work:
            work.write_text("half")
            raise KeyboardInterrupt
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["model.gguf"]

    with atomic_file(target) as work:
        work.write_text("new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["model.gguf"]


def test_stable_hash_ignores_key_order_but_not_values():
    assert stable_hash({"a": 1, "b": 2}) == stable_hash({"b": 2, "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})


def test_cache_round_trip_and_miss(tmp_path):
    store = JsonCache(tmp_path / "ns")
    key = stable_hash("x")
    assert store.get(key) is None
    store.put(key, {"v": 1})
    assert store.get(key) == {"v": 1}


# --- durability: fsync, and a folder swap that never leaves the destination missing -------------------------------


def _entries(folder):
    return sorted(p.name for p in folder.iterdir())


def _record_fsyncs(monkeypatch):
    """Patch os.fsync to note the (device, inode) of everything flushed, then flush it for real."""
    flushed = set()
    real = os.fsync

    def fsync(fd):
        st = os.fstat(fd)
        flushed.add((st.st_dev, st.st_ino))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return flushed


def _identity(path):
    st = os.stat(path)
    return st.st_dev, st.st_ino


@pytest.fixture(params=["exchange", "renames"])
def swap_mode(request, monkeypatch):
    """Run a folder test with renameat2's exchange (where this system has it) and with the two-rename fallback."""
    if request.param == "exchange":
        if store._renameat2() is None:
            pytest.skip("no renameat2 here")
    else:
        monkeypatch.setattr(store, "_exchange", lambda a, b: False)
    return request.param


def _fill(folder, **files):
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_atomic_folder_first_creation_and_replacement(tmp_path, swap_mode):
    target = tmp_path / "model"
    with atomic_folder(target) as work:
        _fill(work, **{"a.txt": "old", "only-old.txt": "x"})
    assert _entries(tmp_path) == ["model"] and (target / "a.txt").read_text() == "old"

    with atomic_folder(target) as work:
        _fill(work, **{"a.txt": "new"})
        (work / "sub").mkdir()
        (work / "sub" / "b.txt").write_text("b")
    assert (target / "a.txt").read_text() == "new" and (target / "sub" / "b.txt").read_text() == "b"
    assert not (target / "only-old.txt").exists(), "the old folder is replaced whole, not merged"
    assert _entries(tmp_path) == ["model"], "no temp or old dot-folder may be left behind"


def test_atomic_folder_exchange_really_swaps(tmp_path, monkeypatch):
    if store._renameat2() is None:
        pytest.skip("no renameat2 here")
    results = []
    real = store._exchange
    monkeypatch.setattr(store, "_exchange", lambda a, b: results.append(real(a, b)) or results[-1])
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_folder(target) as work:
        (work / "new.txt").write_text("new")
    if results != [True]:
        pytest.skip(f"this filesystem refuses RENAME_EXCHANGE ({results})")
    assert _entries(target) == ["new.txt"] and (target / "new.txt").read_text() == "new"
    assert _entries(tmp_path) == ["model"]


def test_exchange_swaps_two_folders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _fill(a, x="a")
    _fill(b, y="b")
    if not store._exchange(a, b):
        pytest.skip("no RENAME_EXCHANGE on this system")
    assert _entries(a) == ["y"] and _entries(b) == ["x"]


def test_atomic_folder_failing_block_leaves_dest_untouched(tmp_path, swap_mode):
    target = tmp_path / "model"
    _fill(target, **{"a.txt": "old"})
    with pytest.raises(KeyboardInterrupt):
        with atomic_folder(target) as work:
            _fill(work, **{"a.txt": "half"})
            raise KeyboardInterrupt
    assert _entries(target) == ["a.txt"] and (target / "a.txt").read_text() == "old"
    assert _entries(tmp_path) == ["model"], "the temp folder is removed"


def test_atomic_folder_fallback_puts_the_old_folder_back_when_the_second_rename_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "_exchange", lambda a, b: False)
    target = tmp_path / "model"
    _fill(target, **{"a.txt": "old"})
    real = os.rename
    refused = []

    def rename(src, dst):
        if Path(dst) == target and not refused:  # the new folder moving in; the rollback after it is let through
            refused.append(src)
            raise OSError("disk says no")
        real(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="disk says no"):
        with atomic_folder(target) as work:
            _fill(work, **{"a.txt": "new"})
    assert refused and (target / "a.txt").read_text() == "old" and _entries(tmp_path) == ["model"]


_CRASH_BETWEEN_RENAMES = """
import os, sys
from pathlib import Path
import docpipe.store as store

store._exchange = lambda a, b: False  # the two-rename fallback
dest = Path(sys.argv[1])
real = os.rename

def rename(src, dst):
    real(src, dst)
    if Path(dst).name.startswith(f".{dest.name}.old-"):
        os._exit(3)  # killed right after moving the old folder aside: no finally, no rollback

os.rename = rename
with store.atomic_folder(dest) as work:
    (work / "a.txt").write_text("new")
"""


def test_atomic_folder_fallback_recovers_a_crash_between_the_renames(tmp_path, monkeypatch):
    target = tmp_path / "model"
    _fill(target, **{"a.txt": "old"})
    crashed = subprocess.run([sys.executable, "-c", _CRASH_BETWEEN_RENAMES, str(target)], cwd=Path(__file__).parents[1])
    assert crashed.returncode == 3
    assert not target.exists(), "the crash left the destination missing"
    parked = [p for p in tmp_path.iterdir() if p.name.startswith(".model.old-")]
    assert len(parked) == 1 and (parked[0] / "a.txt").read_text() == "old"

    monkeypatch.setattr(store, "_exchange", lambda a, b: False)
    with pytest.raises(KeyboardInterrupt):  # even a call that fails puts the old folder back first
        with atomic_folder(target):
            raise KeyboardInterrupt
    assert (target / "a.txt").read_text() == "old"
    assert not [p for p in tmp_path.iterdir() if ".old-" in p.name]

    with atomic_folder(target) as work:
        _fill(work, **{"a.txt": "new"})
    assert (target / "a.txt").read_text() == "new"
    assert not [p for p in tmp_path.iterdir() if ".old-" in p.name]


def test_atomic_folder_recovers_a_parked_folder_and_drops_stale_ones(tmp_path, swap_mode):
    target = tmp_path / "model"
    _fill(tmp_path / ".model.old-99999999", **{"a.txt": "old"})
    with atomic_folder(target) as work:
        assert (target / "a.txt").read_text() == "old", "recovered before the block runs"
        _fill(work, **{"a.txt": "new"})
    assert (target / "a.txt").read_text() == "new" and _entries(tmp_path) == ["model"]

    _fill(tmp_path / ".model.old-12345", **{"a.txt": "finished swap, cleanup cut short"})
    _fill(tmp_path / ".model.old-x", **{"keep": "not ours: the suffix is not a pid"})
    with atomic_folder(target) as work:
        _fill(work, **{"a.txt": "newer"})
    assert (target / "a.txt").read_text() == "newer"
    assert _entries(tmp_path) == [".model.old-x", "model"]


def test_atomic_folder_fsyncs_every_file_and_the_parent(tmp_path, monkeypatch, swap_mode):
    target = tmp_path / "model"
    _fill(target, **{"a.txt": "old"})
    flushed = _record_fsyncs(monkeypatch)
    with atomic_folder(target) as work:
        _fill(work, **{"a.txt": "new", "sub/b.txt": "b"})
    for path in (target / "a.txt", target / "sub" / "b.txt", target / "sub", target, tmp_path):
        assert _identity(path) in flushed, f"{path} was not fsynced"


def test_atomic_file_fsyncs_the_file_and_the_folder(tmp_path, monkeypatch):
    target = tmp_path / "model.gguf"
    flushed = _record_fsyncs(monkeypatch)
    with atomic_file(target) as work:
        work.write_bytes(b"gguf")  # a writer that closes without fsync, like most do
    assert target.read_bytes() == b"gguf"
    assert _identity(target) in flushed and _identity(tmp_path) in flushed


def test_atomic_write_fsyncs_the_file_and_the_folder(tmp_path, monkeypatch):
    target = tmp_path / "sub" / "out.json"
    flushed = _record_fsyncs(monkeypatch)
    atomic_write_text(target, "{}")
    assert _identity(target) in flushed and _identity(target.parent) in flushed


def test_atomic_file_leaves_no_partial_file(tmp_path):
    target = tmp_path / "model.gguf"
    with atomic_file(target) as work:
        work.write_text("new")
    assert not list(tmp_path.glob("*.partial"))
    with pytest.raises(ValueError):
        with atomic_file(target) as work:
            work.write_text("half")
            raise ValueError("writer failed")
    assert not list(tmp_path.glob("*.partial")) and target.read_text() == "new"
    with pytest.raises(ValueError):
        with atomic_file(tmp_path / "never.gguf"):
            raise ValueError("failed before writing")
    assert _entries(tmp_path) == ["model.gguf"]


def test_exchange_falls_back_only_when_the_system_cannot_exchange(tmp_path, monkeypatch):
    import ctypes
    import errno

    def failing(code):
        def renameat2(*args):
            ctypes.set_errno(code)
            return -1

        return lambda: renameat2

    for code in (errno.EINVAL, errno.ENOSYS):  # an old kernel, or a filesystem without RENAME_EXCHANGE
        monkeypatch.setattr(store, "_renameat2", failing(code))
        assert store._exchange(tmp_path / "a", tmp_path / "b") is False
    monkeypatch.setattr(store, "_renameat2", failing(errno.EACCES))  # a real error is not hidden behind the fallback
    with pytest.raises(PermissionError):
        store._exchange(tmp_path / "a", tmp_path / "b")
    monkeypatch.setattr(store, "_renameat2", lambda: None)  # libc without renameat2, or not Linux
    assert store._exchange(tmp_path / "a", tmp_path / "b") is False
