"""Run a real `docpipe ingest` in a subprocess whose every Python process (the spawned parser
workers too) first runs a given sitecustomize: how tests block packages or the network."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path


def ingest_with_sitecustomize(
    sources: dict[str, Path], tmp_path: Path, sitecustomize: str, env: dict[str, str] | None = None
) -> dict[str, dict]:
    """Copy `sources` (name -> file) into a folder, ingest it, and return the documents by path."""
    docs, hooks, out = tmp_path / "docs", tmp_path / "hooks", tmp_path / "out"
    docs.mkdir()
    hooks.mkdir()
    for name, source in sources.items():
        shutil.copy(source, docs / name)
    (hooks / "sitecustomize.py").write_text(sitecustomize)
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join([str(hooks), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "docpipe", "ingest", str(docs), "--out", str(out)]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = (out / "documents.jsonl").read_text().splitlines()
    return {d["path"]: d for d in map(json.loads, lines)}
