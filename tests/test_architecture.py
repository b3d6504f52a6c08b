"""The layer rule, as import-linter contracts in pyproject.toml: stages never import each other,
the floor never imports a stage, and the contracts import nothing heavy. CI fails on a back door."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("docpipe", "trainers", "evals", "export")


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}  # the tree under test, before the installed one
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(lint), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_the_layer_contracts_hold():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


def test_a_cross_stage_import_breaks_the_contracts(tmp_path):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    planted = tmp_path / "export" / "pipeline.py"
    planted.write_text(planted.read_text() + "\nfrom trainers.data import load as _back_door  # noqa: E402\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "Stages are independent: no stage imports another BROKEN" in result.stdout
    assert "export.pipeline -> trainers.data" in result.stdout


def test_ruff_lint_and_format_are_clean():
    ruff = Path(sys.executable).with_name("ruff")
    for args in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run([str(ruff), *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"ruff {' '.join(args)}:\n{result.stdout}{result.stderr}"
