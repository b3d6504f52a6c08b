"""What this machine has to run models on, and how many CPU threads to give them."""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Hardware:
    cuda: str | None  # the GPU's name when torch sees one
    mps: bool
    apple_silicon: bool
    cores: int


def probe() -> Hardware:
    """What this machine has to train on (imports torch when it is installed)."""
    cuda, mps = None, False
    if installed("torch"):
        import torch

        if torch.cuda.is_available():
            cuda = torch.cuda.get_device_name(0)
        mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    apple = sys.platform == "darwin" and platform.machine() == "arm64"
    return Hardware(cuda=cuda, mps=mps, apple_silicon=apple, cores=physical_cores())


def installed(package: str) -> bool:
    """Whether a package can be imported, found without importing it."""
    return importlib.util.find_spec(package) is not None


def choose_threads(requested: int | None, hw: Hardware, other_load: Callable[[], float] | None = None) -> int:
    """CPU threads for torch work: what was asked, else the cores not busy with other work.

    Measured on a 2-core machine: with another process busy, 2 torch threads ran up to 100x
    slower than 1 (../shared/notes/training-stack-measured.md), so busy cores are left alone.
    """
    if requested:
        return requested
    busy = (other_load or _other_load)()
    return max(1, hw.cores - round(busy))


def _other_load(seconds: float = 0.5) -> float:
    """Cores kept busy by other processes, sampled while this one sleeps."""
    import psutil

    psutil.cpu_percent(None)
    time.sleep(seconds)
    return psutil.cpu_percent(None) / 100 * (psutil.cpu_count() or 1)


def physical_cores() -> int:
    try:
        import psutil

        return psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:
        return os.cpu_count() or 1


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / 2**20 if sys.platform == "darwin" else peak / 1024, 1)  # bytes on macOS, KiB on Linux
