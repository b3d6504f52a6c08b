"""Atomic writes and the content-addressed cache."""

from __future__ import annotations

import os

import pytest

from docpipe.store import Store, atomic_file, atomic_write_text, stable_hash


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


def test_store_round_trip_and_miss(tmp_path):
    store = Store(tmp_path)
    key = stable_hash("x")
    assert store.get("ns", key) is None
    store.put("ns", key, {"v": 1})
    assert store.get("ns", key) == {"v": 1}
