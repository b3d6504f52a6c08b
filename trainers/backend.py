"""The protocol every training backend implements, and what it is given.

A backend turns a `TrainJob` into a peft-format adapter in `job.work.adapter` and a
`StageResult`. It resumes from the newest checkpoint in `job.work.checkpoints` when one
is there, so the same command after a crash carries on where the last checkpoint left off.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from docpipe.config import TrainConfig
from docpipe.contracts import StageResult
from docpipe.errors import DocpipeError, ErrorKind
from docpipe.events import EventSink, StageEvent, ignore
from docpipe.layout import StageWorkLayout
from docpipe.runtime.pretrained import ResolvedBase


@dataclass(frozen=True)
class TrainJob:
    stage: str  # "sft" | "dpo"
    base: ResolvedBase
    train_rows: list[dict]  # sft: {"prompt", "completion"} message lists; dpo: {"prompt", "chosen", "rejected"}
    eval_rows: list[dict]
    work: StageWorkLayout  # checkpoints/ and adapter/ go here
    options: TrainConfig
    epochs: float
    device: str  # "cpu" | "cuda" | "mps"
    threads: int
    init_adapter: Path | None = None  # train on from this adapter (DPO continues the SFT one)
    events: EventSink = ignore

    def report(
        self, step: int, total: int, *, loss: float | None = None, eval_loss: float | None = None, tokens_per_s: float | None = None
    ) -> None:
        """Progress of this stage as the one event type: the loss, held-out loss and real tokens/s so far."""
        figures = {"loss": loss, "eval_loss": eval_loss, "tokens_per_s": tokens_per_s}
        self.events(
            StageEvent(stage="train", phase=self.stage, step=step, total=total, metrics={k: v for k, v in figures.items() if v is not None})
        )


class Backend(Protocol):
    name: str

    def sft(self, job: TrainJob) -> StageResult: ...

    def dpo(self, job: TrainJob) -> StageResult: ...


class BackendUnavailable(DocpipeError, RuntimeError):
    """The backend cannot run here (package missing, no GPU); the message says why and what to do."""

    stage = "train"
    kind = ErrorKind.backend_unavailable
