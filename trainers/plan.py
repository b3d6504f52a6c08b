"""The training plan every backend follows: step count, warm-up, evaluation schedule, timed checkpoints,
keep-best/early stopping and the checkpoint to resume from, written once and free of any ML framework."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from docpipe.store import write_json

if TYPE_CHECKING:
    from trainers.backend import TrainJob

WARMUP_SHARE = 0.03  # of all steps, before the linear decay


@dataclass(frozen=True)
class TrainingPlan:
    """How many optimiser steps a stage takes and when it warms up and measures the held-out loss.

    Steps follow the data (epochs), never a fixed iteration count unless `max_steps` says so.
    """

    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    eval_every: int

    def epoch_at(self, step: int) -> float:
        """Epochs done after `step` optimiser steps (0 when there are no steps per epoch)."""
        return step / self.steps_per_epoch if self.steps_per_epoch else 0.0

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, index within it) of optimiser step `step`, counting from 0."""
        return divmod(step, max(1, self.steps_per_epoch))

    def evaluates_at(self, step: int) -> bool:
        """Whether the held-out loss is measured after `step`: every `eval_every` steps and at the last."""
        return step % self.eval_every == 0 or step == self.total_steps


def plan_training(
    rows: int, batch_size: int, epochs: float, *, max_steps: int | None = None, evals_per_epoch: int = 2, warmup_share: float = WARMUP_SHARE
) -> TrainingPlan:
    """The plan for `rows` examples in steps of `batch_size`.

    An epoch is ceil(rows / batch_size) steps (the last batch may be smaller), and the run is that many
    per epoch times `epochs`, rounded up, at least one step.

    Args:
        rows: training examples (pairs).
        batch_size: examples per optimiser step.
        epochs: passes over the data; may be fractional.
        max_steps: when given, the total whatever the epochs (smoke runs).
        evals_per_epoch: held-out measurements per epoch (at least one every step when epochs are short).
        warmup_share: the share of all steps the learning rate warms up over (at least one step).

    Returns:
        The plan.
    """
    steps_per_epoch = math.ceil(rows / batch_size)
    total = max_steps or max(1, math.ceil(steps_per_epoch * epochs))
    return TrainingPlan(
        steps_per_epoch=steps_per_epoch,
        total_steps=total,
        warmup_steps=max(1, round(warmup_share * total)),
        eval_every=max(1, steps_per_epoch // evals_per_epoch),
    )


def plan_job(job: TrainJob) -> TrainingPlan:
    """The plan of a training job: what every backend calls, so the same input gives the same steps."""
    o = job.options
    return plan_training(len(job.train_rows), o.batch_size, job.epochs, max_steps=o.max_steps, evals_per_epoch=o.evals_per_epoch)


@dataclass
class KeepBest:
    """Keep the weights with the lowest held-out loss; stop after `patience` measurements without improvement.

    The state is written to `path` after every measurement, so a resumed run remembers the best so far.
    A measurement at a step already judged before a resume (the steps between the checkpoint and the
    kill run again) keeps its first verdict: it is not counted twice.
    """

    path: Path
    patience: int
    best: float | None = None
    best_step: int | None = None
    bad: int = 0  # measurements since the best
    stopped: bool = False
    judged: int | None = None  # the step of the latest measurement judged

    @classmethod
    def open(cls, path: Path, patience: int, *, resuming: bool) -> KeepBest:
        """The saved state when resuming from a checkpoint, else a fresh one (written, replacing a stale file).

        Args:
            path: the state file (`job.work.best_state`).
            patience: measurements without improvement before stopping.
            resuming: whether training carries on from a checkpoint.
        """
        if resuming and path.is_file():
            saved = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                path,
                patience,
                saved.get("best"),
                saved.get("best_step"),
                saved.get("bad", 0),
                saved.get("stopped", False),
                saved.get("judged"),
            )
        fresh = cls(path, patience)
        fresh.save()
        return fresh

    def judge(self, step: int, loss: float, keep: Callable[[], None]) -> bool:
        """Record the held-out loss at `step`; call `keep` to save the weights when they are the best so far.

        Returns:
            Whether training should stop.
        """
        if self.judged is not None and step <= self.judged:
            if step == self.best_step:
                keep()  # the best's weights may not have outlived the kill: keep the replayed ones
            return self.stops_at(step)
        if self.best is None or loss < self.best:
            keep()  # before the state says so: a kill in between leaves the older best in both
            self.best, self.best_step, self.bad = float(loss), step, 0
        else:
            self.bad += 1
            self.stopped = self.stopped or self.bad >= self.patience
        self.judged = step
        self.save()
        return self.stops_at(step)

    def stops_at(self, step: int) -> bool:
        """Whether a run that has taken `step` steps is over: it stopped early at this step or before."""
        return self.stopped and self.judged is not None and step >= self.judged

    def save(self) -> None:
        # Atomic: a kill mid-write must not leave a file the resumed run cannot read.
        write_json(
            self.path, {"best": self.best, "best_step": self.best_step, "bad": self.bad, "stopped": self.stopped, "judged": self.judged}
        )


class CheckpointTimer:
    """A resumable checkpoint at least every `minutes` (0: every step), whatever a step takes."""

    def __init__(self, minutes: float, clock: Callable[[], float] = time.monotonic):
        self.every, self.clock = minutes * 60, clock
        self.last = clock()

    def due(self) -> bool:
        """Whether a checkpoint is due after the step just taken; when it is, the clock starts again."""
        now = self.clock()
        if now - self.last < self.every:
            return False
        self.last = now
        return True


@dataclass(frozen=True)
class CheckpointFolders:
    """How a backend names its checkpoints, `<prefix><step>`, and the file a complete one holds."""

    prefix: str  # "checkpoint-" (transformers), "step-" (mlx)
    marker: str  # written last, or the folder appears whole (renamed into place)
    digits: int = 0  # zero-padding of the step

    def name(self, step: int) -> str:
        return f"{self.prefix}{step:0{self.digits}d}"

    def step(self, folder: Path) -> int:
        return int(folder.name.removeprefix(self.prefix))

    def newest(self, root: Path) -> Path | None:
        """The complete checkpoint with the highest step in `root`, or None."""
        done = [p for p in root.glob(f"{self.prefix}*") if p.name.removeprefix(self.prefix).isdigit() and (p / self.marker).is_file()]
        return max(done, key=self.step, default=None)
