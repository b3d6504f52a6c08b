"""Error recovery on the document task, with failures planted where the real stages raise them: the errors are
the ones the trainer and the dataset loader raise (their real classes and messages), the registry and failure
signatures are the document task's own. Training itself is replaced by a scripted result: an out-of-memory
error or a NaN loss cannot be produced on purpose here in a test's time."""

from __future__ import annotations

import math

import pytest

from docpipe.build import moves
from docpipe.config import DocpipeConfig
from docpipe.contracts import LossPoint, StageResult
from docpipe.layout import Layout
from docpipe.loop.journal import Journal
from docpipe.loop.orchestrator import Loop, LoopSettings, Trial
from docpipe.store import stable_hash
from trainers import data
from trainers.train import DivergedError, TrainError, check_finite


def out_of_memory(cfg: DocpipeConfig, tmp_path) -> Exception | None:
    """What `train` raises when torch's CPU allocator fails on the only backend there is."""
    if cfg.train.batch_size > 2:
        return TrainError("sft failed on every backend tried: hf on cpu: RuntimeError: DefaultCPUAllocator: can't allocate memory")
    return None


def nan_loss(cfg: DocpipeConfig, tmp_path) -> Exception | None:
    """The trainer's own check on a run whose loss blew up at a high learning rate."""
    if cfg.train.learning_rate > 1e-4:
        blown = StageResult(
            stage="sft", adapter=str(tmp_path), steps=20, epochs=1.0, train_loss=[LossPoint(step=10, epoch=0.5, loss=math.nan)]
        )
        with pytest.raises(DivergedError) as raised:
            check_finite(blown, cfg.train.learning_rate)
        return raised.value
    return None


def empty_dataset(cfg: DocpipeConfig, tmp_path) -> Exception | None:
    """The dataset loader on a train.jsonl the filters left empty (as when min_support rejects every answer)."""
    if cfg.generate.min_support > 0.4:
        layout = Layout(tmp_path / "out")
        layout.dataset.root.mkdir(parents=True, exist_ok=True)
        for path in (layout.dataset.train, layout.dataset.eval):
            path.write_text("")
        with pytest.raises(data.DatasetError) as raised:
            data.load(layout.dataset, layout.root, with_dpo=False)
        return raised.value
    return None


class PlantedTask:
    """The document task's ACTION_SPACE and failure signatures around a scripted run that fails as planted."""

    name = "documents"

    def __init__(self, tmp_path, *planted):
        self.tmp_path, self.planted = tmp_path, planted
        self.actions = moves.action_space(("smollm2-135m-instruct",))
        self.signatures = moves.SIGNATURES
        self.ran: list[DocpipeConfig] = []

    def baseline(self) -> DocpipeConfig:
        return DocpipeConfig()

    def fingerprint(self, config) -> str:
        return stable_hash(config.model_dump(mode="json"))[:12]

    def run(self, config, step: int) -> Trial:
        for plant in self.planted:
            if (error := plant(config, self.tmp_path)) is not None:
                raise error
        self.ran.append(config)
        return Trial(run=f"run-{step}", scores={f"q{i}": 0.5 for i in range(20)}, target_met=True)

    def suggestions(self, trial, config):
        return []

    def describe_failure(self, config) -> dict:
        return {"batch_size": config.train.batch_size}


@pytest.mark.parametrize(
    "plant, recovery, setting",
    [
        (out_of_memory, "out of memory: batch_size = 2", ("train", "batch_size", 2)),
        (nan_loss, "nan loss: learning_rate = 0.0001", ("train", "learning_rate", 1e-4)),
        (empty_dataset, "empty dataset: min_support = 0.4", ("generate", "min_support", 0.4)),
    ],
)
def test_a_planted_failure_is_recovered_through_the_registry_and_the_journal_says_how(tmp_path, plant, recovery, setting):
    task = PlantedTask(tmp_path, plant)
    journal = Journal(tmp_path / "journal.jsonl", tmp_path / "journal.md", "planted")
    result = Loop(task, journal, LoopSettings(max_steps=2)).run()
    assert result.stop_reason == "target met"
    step = result.steps[0]
    assert step.outcome == "baseline" and step.recovery == recovery and step.error  # what failed, and how it was fixed
    section, field, value = setting
    assert step.config[section][field] == value and getattr(getattr(task.ran[0], section), field) == value
    assert recovery in (tmp_path / "journal.md").read_text()


def test_two_failures_in_one_step_are_both_recovered(tmp_path):
    task = PlantedTask(tmp_path, out_of_memory, nan_loss)
    result = Loop(task, Journal(tmp_path / "j.jsonl", tmp_path / "j.md", "planted"), LoopSettings(max_steps=2)).run()
    assert result.steps[0].recovery == "out of memory: batch_size = 2; nan loss: learning_rate = 0.0001"


def test_a_failure_no_fix_cures_ends_the_step_as_failed_with_the_reason(tmp_path):
    def always_out_of_memory(cfg, tmp_path):
        return TrainError("sft failed on every backend tried: hf on cpu: OutOfMemoryError: CUDA out of memory")

    task = PlantedTask(tmp_path, always_out_of_memory)
    result = Loop(task, Journal(tmp_path / "j.jsonl", tmp_path / "j.md", "planted"), LoopSettings(max_steps=3, max_retries=2)).run()
    step = result.steps[0]
    assert result.best is None and result.stop_reason.startswith("the baseline failed")
    assert step.outcome == "failed" and "out of memory" in step.error
    assert step.recovery.startswith("out of memory: batch_size = 2; out of memory: max_seq_tokens = 512")
