"""Last resort for formats neither library reads (odp, Apple Pages, docm/dotx): LibreOffice -> PDF -> kreuzberg."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from docpipe.config import IngestConfig
from docpipe.ingest.extraction import Extraction, ExtractionError

# Pages '09 files carry the rendering Pages made of the whole document; it keeps Pages' own
# page breaks and every table cell, where LibreOffice's import lost a page break and a column.
PAGES_PREVIEW = "QuickLook/Preview.pdf"
# Share of cfg.timeout_s LibreOffice may take, leaving the rest for reading its PDF.
CONVERT_SHARE = 0.8


def extract(path: Path, fmt: str, cfg: IngestConfig) -> Extraction:
    """Convert `path` to PDF (or take the PDF a .pages file embeds) and read it with page numbers."""
    from docpipe.ingest.engines import kreuzberg_engine  # the PDF reader, so pages come out right

    with tempfile.TemporaryDirectory(prefix="docpipe-soffice-") as tmp:
        pdf = _pages_preview(path, Path(tmp)) if fmt == "pages" else None
        if pdf is None:
            pdf = convert(path, fmt, "pdf", Path(tmp), timeout=cfg.timeout_s * CONVERT_SHARE)
        return kreuzberg_engine.extract(pdf, "pdf", cfg)


def convert(path: Path, fmt: str, target: str, workdir: Path, timeout: float) -> Path:
    """Convert `path` to `target` ("pdf", "docx", "pptx") inside `workdir`; return the new file.

    Each call gets its own LibreOffice profile: parallel workers sharing the default one hand
    their jobs to whichever instance started first, or fail.
    """
    soffice = shutil.which("soffice")
    if soffice is None:
        raise ExtractionError(f"LibreOffice (soffice) is not installed; install it (scripts/setup.sh does) to read {fmt} files")
    # A plain name with the detected format's extension: LibreOffice picks its import filter by
    # extension, and odd characters or a leading '-' in the real name cannot confuse it.
    source = workdir / f"input.{fmt}"
    shutil.copyfile(path, source)
    outdir = workdir / "out"
    profile = (workdir / "profile").as_uri()
    command = [
        soffice,
        f"-env:UserInstallation={profile}",
        "--headless",
        "--norestore",
        "--nolockcheck",
        "--convert-to",
        target,
        "--outdir",
        str(outdir),
        str(source),
    ]
    (workdir / "tmp").mkdir()
    try:  # LibreOffice's own temp files go under workdir too, so a killed run leaves nothing in /tmp
        output = _run(command, timeout, env={**os.environ, "TMPDIR": str(workdir / "tmp")})
    except ExtractionError:
        _remove_ipc_pipe(profile)
        raise
    converted = outdir / f"input.{target}"
    if not converted.is_file() or converted.stat().st_size == 0:
        detail = _last_line(output)
        raise ExtractionError(f"LibreOffice could not convert this {fmt} file to {target}" + (f": {detail}" if detail else ""))
    return converted


def _run(command: list[str], timeout: float, env: dict[str, str]) -> str:
    """Run soffice; on timeout kill it and the soffice.bin it started (both are ours)."""
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_tree(process)
        raise ExtractionError(f"LibreOffice took over {timeout:.0f} s to convert it (timeout_s)") from None
    return output.decode("utf-8", "replace")


def _kill_tree(process: subprocess.Popen) -> None:
    import psutil

    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    process.kill()
    process.communicate()


def _remove_ipc_pipe(profile_url: str) -> None:
    """Delete the socket a killed LibreOffice leaves in /tmp (a clean exit removes it itself).

    LibreOffice names it after the MD5 of the profile URL in UTF-16, each byte in unpadded hex
    (desktop/source/app/officeipcthread.cxx), always under /tmp.
    """
    digest = hashlib.md5(profile_url.encode("utf-16-le")).digest()
    name = f"OSL_PIPE_{os.getuid()}_SingleOfficeIPC_" + "".join(format(byte, "x") for byte in digest)
    with contextlib.suppress(OSError):
        Path("/tmp", name).unlink()


def _pages_preview(path: Path, workdir: Path) -> Path | None:
    """The PDF preview inside a Pages '09 zip, written to `workdir`; None when it has none."""
    try:
        with zipfile.ZipFile(path) as zf:
            data = zf.read(PAGES_PREVIEW)
    except (KeyError, zipfile.BadZipFile, OSError):
        return None  # newer Pages files keep only a JPEG thumbnail: LibreOffice converts them
    preview = workdir / "preview.pdf"
    preview.write_bytes(data)
    return preview


def _last_line(output: str) -> str:
    # soffice's first line is a harmless "failed to launch javaldx" warning; the cause comes last.
    lines = [line.strip() for line in output.splitlines() if line.strip() and "javaldx" not in line]
    return lines[-1][:200] if lines else ""
