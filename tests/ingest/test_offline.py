"""Ingestion needs no network: with every connection refused, files read the same and none is tried."""

from __future__ import annotations

import os
import textwrap

from tests.ingest.subprocess_ingest import ingest_with_sitecustomize

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
    log = tmp_path / "net.log"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "DO_NOT_TRACK", "SCARF_NO_ANALYTICS")}
    env["DOCPIPE_TEST_NET_LOG"] = str(log)
    sources = {rel.replace("/", "__"): corpus / rel for rel in SAMPLES}
    docs = ingest_with_sitecustomize(sources, tmp_path, SITECUSTOMIZE, env)
    attempts = log.read_text() if log.exists() else ""
    assert attempts == "", f"ingestion tried the network:\n{attempts}"
    statuses = {d["path"]: (d["status"], d["engine"], d["reason"]) for d in docs.values()}
    assert all(s[0] == "ok" for s in statuses.values()), statuses
    engines = {s[1] for s in statuses.values()}
    assert "unstructured" in engines, "the engine that downloads out of the box must be among those tested"
