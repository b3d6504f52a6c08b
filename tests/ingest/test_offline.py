"""Ingestion needs no network: with every connection refused, files read the same and none is tried."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

# Loaded by every Python process of the run (the parser workers too) through PYTHONPATH.
SITECUSTOMIZE = textwrap.dedent(
    """
    import os, socket

    _LOG = os.environ["DOCPIPE_TEST_NET_LOG"]
    _connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex

    def _refuse(what):
        with open(_LOG, "a") as fh:
            fh.write(f"{os.getpid()} {what}\\n")
        raise OSError(101, "Network is unreachable (blocked by docpipe's offline test)")

    def connect(self, address):
        if self.family == socket.AF_UNIX:
            return _connect(self, address)
        _refuse(f"connect {address}")

    def connect_ex(self, address):
        if self.family == socket.AF_UNIX:
            return _connect_ex(self, address)
        _refuse(f"connect_ex {address}")

    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
    socket.getaddrinfo = lambda *a, **k: _refuse(f"getaddrinfo {a[:2]}")
    """
)

# Files whose engines are the ones that reach for the network out of the box: unstructured
# (spaCy model download, analytics ping) and OCR of images (layout models from a hub).
SAMPLES = [
    "docx/handbook-1p.docx",
    "html/example-10k-1p.html",
    "md/README.md",
    "eml/email-with-image.eml",
    "epub/winter-sports.epub",
    "png/DA-1p.png",
    "pdf_scanned/pdf-with-ocr-text.pdf",
    "pdf/fake-memo.pdf",
]


def test_ingest_runs_with_the_network_unreachable(corpus, tmp_path):
    docs, hooks, log = tmp_path / "docs", tmp_path / "hooks", tmp_path / "net.log"
    docs.mkdir()
    hooks.mkdir()
    for rel in SAMPLES:
        shutil.copy(corpus / rel, docs / rel.replace("/", "__"))
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "DO_NOT_TRACK", "SCARF_NO_ANALYTICS")}
    env.update(PYTHONPATH=os.pathsep.join([str(hooks), env.get("PYTHONPATH", "")]), DOCPIPE_TEST_NET_LOG=str(log))
    result = subprocess.run(
        [sys.executable, "-m", "docpipe", "ingest", str(docs), "--out", str(tmp_path / "out")],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    attempts = log.read_text() if log.exists() else ""
    assert attempts == "", f"ingestion tried the network:\n{attempts}"
    lines = (tmp_path / "out" / "documents.jsonl").read_text().splitlines()
    statuses = {d["path"]: (d["status"], d["engine"], d["reason"]) for d in map(json.loads, lines)}
    assert all(s[0] == "ok" for s in statuses.values()), statuses
    engines = {s[1] for s in statuses.values()}
    assert "unstructured" in engines, "the engine that downloads out of the box must be among those tested"
