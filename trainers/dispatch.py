"""Pick the training backend and device for this machine, and the chain to fall back on.

unsloth on CUDA (hf on CUDA when unsloth is not installed), mlx on Apple Silicon, hf (transformers
+ peft) everywhere else. Availability is checked with `find_spec`, never by importing: a backend
module is imported only once chosen, so the CPU path never touches CUDA- or Apple-only packages.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from docpipe.runtime.hardware import Hardware, installed
from trainers.backend import Backend, BackendUnavailable

# name -> (module, the package it needs, the extra that installs it)
BACKENDS = {
    "hf": ("trainers.hf_backend", "peft", "train"),
    "unsloth": ("trainers.unsloth_backend", "unsloth", "cuda"),
    "mlx": ("trainers.mlx_backend", "mlx_lm", "mlx"),
}


@dataclass(frozen=True)
class Choice:
    backend: str
    device: str
    reason: str


def choose(backend: str, device: str, hw: Hardware, is_installed: Callable[[str], bool] | None = None) -> Choice:
    """The backend and device to train with; `backend`/`device` are the user's ("auto" or a name)."""
    is_installed = is_installed or installed
    if backend == "auto":
        if hw.cuda:
            if is_installed("unsloth"):
                return Choice("unsloth", "cuda", f"CUDA GPU {hw.cuda}: unsloth")
            return Choice("hf", _device(device, hw), f"CUDA GPU {hw.cuda}, but unsloth is not installed (pip install 'docpipe[cuda]'): hf")
        if hw.apple_silicon and is_installed("mlx_lm"):
            return Choice("mlx", "metal", "Apple Silicon: mlx-lm")
        why = "Apple Silicon, but mlx-lm is not installed (pip install 'docpipe[mlx]')" if hw.apple_silicon else "no CUDA GPU"
        return Choice("hf", _device(device, hw), f"{why}: hf (transformers + peft)")
    if backend not in BACKENDS:
        raise BackendUnavailable(f"unknown backend {backend!r}; choose one of auto, {', '.join(BACKENDS)}")
    _, package, extra = BACKENDS[backend]
    if backend == "unsloth" and not hw.cuda:
        raise BackendUnavailable(
            "the unsloth backend needs a CUDA GPU and torch sees none (torch.cuda.is_available() is False); use --backend hf"
        )
    if not is_installed(package):
        raise BackendUnavailable(f"the {backend} backend needs {package}: pip install 'docpipe[{extra}]'")
    if backend == "hf":
        return Choice("hf", _device(device, hw), "asked for (--backend hf)")
    return Choice(backend, "cuda" if backend == "unsloth" else ("metal" if hw.apple_silicon else "cpu"), f"asked for (--backend {backend})")


def fallback_chain(choice: Choice, hw: Hardware) -> list[Choice]:
    """What to try, in order, when `choice` fails: unsloth -> hf on the GPU -> hf on CPU; mlx -> hf."""
    chain = []
    if choice.backend == "unsloth":
        chain.append(Choice("hf", "cuda", "fallback after unsloth failed"))
    elif choice.backend == "mlx":
        chain.append(Choice("hf", "mps" if hw.mps else "cpu", "fallback after mlx failed"))
    if (chain[-1] if chain else choice).device != "cpu":
        chain.append(Choice("hf", "cpu", f"fallback to CPU after {choice.backend} on {choice.device} failed"))
    return chain


def load(name: str) -> Backend:
    """Import the backend module now that it is chosen."""
    module = importlib.import_module(BACKENDS[name][0])
    return module.BACKEND


def _device(device: str, hw: Hardware) -> str:
    if device == "auto":
        return "cuda" if hw.cuda else "mps" if hw.mps else "cpu"
    if device == "cuda" and not hw.cuda:
        raise BackendUnavailable("device cuda asked for, but torch sees no CUDA GPU; use --device cpu")
    if device == "mps" and not hw.mps:
        raise BackendUnavailable("device mps asked for, but torch sees no Apple GPU; use --device cpu")
    return device
