"""Incremental and resumable ingestion: unchanged files are never parsed twice."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from docpipe.config import IngestConfig
from docpipe.store import iter_jsonl
from tests.stages import ingest_folder

REPO = Path(__file__).resolve().parents[2]


def _docs(tmp_path: Path, n: int) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    for i in range(n):
        (docs / f"note{i}.md").write_text(f"# Note {i}\n\nThe archive keeps note number {i} on shelf {i * 7}.\n")
    return docs


def test_rerun_reuses_everything_and_a_changed_file_is_parsed_again(tmp_path):
    docs, out = _docs(tmp_path, 3), tmp_path / "out"
    cfg = IngestConfig(workers=1, engines={"md": ["text"]})
    first = ingest_folder(docs, out, cfg)
    assert (first.parsed, first.reused) == (3, 0)
    assert ingest_folder(docs, out, cfg).reused == 3
    (docs / "note1.md").write_text("# Note 1\n\nRewritten: the shelf moved to the east wing.\n")
    third = ingest_folder(docs, out, cfg)
    assert third.reused == 2
    texts = {d["path"]: d["text"] for d in iter_jsonl(out / "documents.jsonl")}
    assert "east wing" in texts["note1.md"]


def test_changed_settings_parse_again(tmp_path):
    docs, out = _docs(tmp_path, 2), tmp_path / "out"
    ingest_folder(docs, out, IngestConfig(workers=1, engines={"md": ["text"]}))
    assert ingest_folder(docs, out, IngestConfig(workers=1, engines={"md": ["text"]}, min_chars=5)).reused == 0


def test_effective_config_is_saved_next_to_the_output(tmp_path):
    docs, out = _docs(tmp_path, 1), tmp_path / "out"
    ingest_folder(docs, out, IngestConfig(workers=1, timeout_s=77))
    assert json.loads((out / "ingest_config.json").read_text())["timeout_s"] == 77


def test_ctrl_c_keeps_what_was_read_and_the_same_command_resumes(tmp_path):
    docs, out = _docs(tmp_path, 6), tmp_path / "out"
    config = tmp_path / "slow.yaml"
    config.write_text("ingest:\n  workers: 1\n  engines:\n    md: ['tests.ingest.fake_engines:slow_echo']\n")
    cmd = [sys.executable, "-m", "docpipe", "ingest", str(docs), "--out", str(out), "--config", str(config)]
    # Regression: started from a background job (`.ci/run &`), the child inherited SIGINT as
    # ignored, Python then never raised KeyboardInterrupt, and the run finished all six files.
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while not list((out / "cache").rglob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "run the same command to resume" in err
    saved = len(list((out / "cache").rglob("*.json")))
    assert 1 <= saved < 6
    resumed = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads((out / "ingest_report.json").read_text())
    assert report["reused"] == saved
    assert report["parsed"] == 6
