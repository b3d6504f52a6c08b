"""The protocol every training backend implements, and what it is given.

A backend turns a `TrainJob` into a peft-format adapter in `job.work_dir / "adapter"` and a
`StageResult`. It resumes from the newest checkpoint in `job.work_dir / "checkpoints"` when one
is there, so the same command after a crash carries on where the last checkpoint left off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from docpipe.base_models import ResolvedBase
from docpipe.config import TrainConfig
from docpipe.contracts import StageResult


@dataclass(frozen=True)
class Progress:
    """One report from a running stage, for a progress bar."""

    stage: str
    step: int
    total_steps: int
    loss: float | None = None
    eval_loss: float | None = None
    tokens_per_s: float | None = None


@dataclass(frozen=True)
class TrainJob:
    stage: str  # "sft" | "dpo"
    base: ResolvedBase
    train_rows: list[dict]  # sft: {"prompt", "completion"} message lists; dpo: {"prompt", "chosen", "rejected"}
    eval_rows: list[dict]
    work_dir: Path  # checkpoints/ and adapter/ go here
    options: TrainConfig
    epochs: float
    device: str  # "cpu" | "cuda" | "mps"
    threads: int
    init_adapter: Path | None = None  # train on from this adapter (DPO continues the SFT one)
    on_progress: Callable[[Progress], None] | None = None


class Backend(Protocol):
    name: str

    def sft(self, job: TrainJob) -> StageResult: ...

    def dpo(self, job: TrainJob) -> StageResult: ...


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / 2**20 if sys.platform == "darwin" else peak / 1024, 1)  # bytes on macOS, KiB on Linux


class BackendUnavailable(RuntimeError):
    """The backend cannot run here (package missing, no GPU); the message says why and what to do."""
