"""The one training plan: step counts on hand-computed cases, the same steps on every backend, keep-best
decisions and their persistence across a resume, timed checkpoints and the checkpoint to resume from."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from docpipe.config import TrainConfig
from docpipe.layout import DatasetLayout, StageWorkLayout
from docpipe.runtime.pretrained import ResolvedBase
from tests.trainers.tiny_model import tiny_dataset
from trainers import data
from trainers.backend import TrainJob
from trainers.plan import CheckpointFolders, CheckpointTimer, KeepBest, TrainingPlan, plan_job, plan_training


@pytest.mark.parametrize(
    "rows, batch, epochs, options, expected",
    [
        # 10 pairs in batches of 8: 2 steps an epoch (the last holds 2 pairs), 4 in 2 epochs
        (10, 8, 2, {}, TrainingPlan(steps_per_epoch=2, total_steps=4, warmup_steps=1, eval_every=1)),
        (16, 4, 2, {}, TrainingPlan(steps_per_epoch=4, total_steps=8, warmup_steps=1, eval_every=2)),
        # 3 steps an epoch, 1.5 epochs: 4.5 steps, rounded up
        (10, 4, 1.5, {}, TrainingPlan(steps_per_epoch=3, total_steps=5, warmup_steps=1, eval_every=1)),
        # 125 steps an epoch, 375 in all, 3% warm-up = 11.25 -> 11, 4 measurements an epoch: every 31 steps
        (1000, 8, 3, {"evals_per_epoch": 4}, TrainingPlan(steps_per_epoch=125, total_steps=375, warmup_steps=11, eval_every=31)),
        (200, 1, 1, {"warmup_share": 0.1}, TrainingPlan(steps_per_epoch=200, total_steps=200, warmup_steps=20, eval_every=100)),
        # max_steps wins over the epochs; the warm-up follows it
        (1000, 8, 3, {"max_steps": 6}, TrainingPlan(steps_per_epoch=125, total_steps=6, warmup_steps=1, eval_every=62)),
        # more measurements asked than steps in an epoch: one every step
        (3, 1, 1, {"evals_per_epoch": 10}, TrainingPlan(steps_per_epoch=3, total_steps=3, warmup_steps=1, eval_every=1)),
        # no rows: still one step, so a plan always exists
        (0, 8, 2, {}, TrainingPlan(steps_per_epoch=0, total_steps=1, warmup_steps=1, eval_every=1)),
    ],
)
def test_plan_on_hand_computed_cases(rows, batch, epochs, options, expected):
    assert plan_training(rows, batch, epochs, **options) == expected


def test_plan_places_steps_in_epochs_and_measurements():
    plan = plan_training(10, 4, 1.5, evals_per_epoch=1)  # 3 steps an epoch, 5 in all, a measurement every 3
    assert [plan.epoch_at(s) for s in (0, 3, 5)] == [0.0, 1.0, pytest.approx(5 / 3)]
    assert [plan.position(s) for s in range(5)] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    assert [s for s in range(1, 6) if plan.evaluates_at(s)] == [3, 5]  # every 3 steps, and the last
    assert plan_training(0, 8, 1).epoch_at(1) == 0.0


def _job(tiny_model, rows: data.TrainData, work: Path, **options) -> TrainJob:
    base = ResolvedBase("tiny", tiny_model, "local folder", None, None, None)
    # Patience above the number of measurements: the run goes the whole plan whatever the held-out loss does.
    opts = TrainConfig(
        **{
            "batch_size": 8,
            "learning_rate": 5e-3,
            "lora_rank": 4,
            "lora_alpha": 8,
            "checkpoint_minutes": 60,
            "early_stopping_patience": 10,
            "max_seq_tokens": 256,
            **options,
        }
    )
    return TrainJob("sft", base, rows.train, rows.eval, StageWorkLayout(work), opts, 2, "cpu", 1)


@pytest.fixture(scope="module")
def ten_pairs(tmp_path_factory) -> data.TrainData:
    folder = tiny_dataset(tmp_path_factory.mktemp("ten") / "dataset", pairs=10)
    return data.load(DatasetLayout(folder), folder.parent, with_dpo=False)


@pytest.mark.parametrize("backend", ["hf", pytest.param("mlx", marks=pytest.mark.mlx)])
def test_every_backend_trains_the_plans_steps(backend, tiny_model, ten_pairs, tmp_path):
    """10 pairs, batch 8, 2 epochs: 4 steps (2 an epoch, the last batch short) and a measurement after each,
    on every backend; mlx once planned 3 (10 / 8 * 2, rounded up)."""
    if backend == "mlx":
        pytest.importorskip("mlx_lm", reason="the mlx backend needs docpipe[mlx]")
        from trainers.mlx_backend import BACKEND
    else:
        torch = pytest.importorskip("torch")
        from trainers.hf_backend import BACKEND

        threads = torch.get_num_threads()
    events = []
    job = _job(tiny_model, ten_pairs, tmp_path, evals_per_epoch=2)
    job = TrainJob(**{**job.__dict__, "events": events.append})
    try:
        result = BACKEND.sft(job)
    finally:
        if backend == "hf":
            torch.set_num_threads(threads)  # the backend pins the job's threads; later tests expect theirs
    assert plan_job(job).total_steps == 4
    assert (result.steps, result.epochs) == (4, 2.0)
    assert [p.step for p in result.eval_loss] == [1, 2, 3, 4]
    assert events[-1].step == events[-1].total == 4 and events[-1].phase == "sft"


def _judge_all(keep: KeepBest, losses: dict[int, float]) -> tuple[list[int], list[int]]:
    """(steps whose weights were kept, steps after which training stopped)."""
    kept, stops = [], []
    for step, loss in losses.items():
        if keep.judge(step, loss, keep=lambda step=step: kept.append(step)):
            stops.append(step)
    return kept, stops


def test_keep_best_keeps_improvements_and_stops_after_patience(tmp_path):
    keep = KeepBest.open(tmp_path / "best.json", patience=2, resuming=False)
    kept, stops = _judge_all(keep, {2: 3.0, 4: 2.0, 6: 2.0, 8: 1.5, 10: 1.6, 12: 1.7})
    assert kept == [2, 4, 8]  # an equal loss is no improvement
    assert stops == [12] and keep.stopped and (keep.best, keep.best_step, keep.bad) == (1.5, 8, 2)
    assert not keep.stops_at(11) and keep.stops_at(12)


def test_keep_best_state_survives_a_reload(tmp_path):
    path = tmp_path / "best.json"
    keep = KeepBest.open(path, patience=3, resuming=False)
    _judge_all(keep, {2: 3.0, 4: 2.0, 6: 2.5})
    assert json.loads(path.read_text()) == {"best": 2.0, "best_step": 4, "bad": 1, "stopped": False, "judged": 6}

    again = KeepBest.open(path, patience=3, resuming=True)
    assert (again.best, again.best_step, again.bad, again.stopped, again.judged) == (2.0, 4, 1, False, 6)
    kept, stops = _judge_all(again, {8: 2.6, 10: 2.7})
    assert (kept, stops) == ([], [10])  # one bad measurement before the reload, two after: patience 3

    fresh = KeepBest.open(path, patience=3, resuming=False)  # a run from scratch forgets a stale state
    assert fresh.best is None and json.loads(path.read_text())["best"] is None


def test_keep_best_counts_measurements_replayed_after_a_resume_once(tmp_path):
    """Killed after the measurements at steps 4 and 6 but resumed from the checkpoint at step 3: steps 4
    and 6 run again, and the run must end as the one never stopped would have."""
    straight = KeepBest.open(tmp_path / "a.json", patience=2, resuming=False)
    losses = {2: 3.0, 4: 2.0, 6: 2.5, 8: 2.6}
    assert _judge_all(straight, losses) == ([2, 4], [8])

    killed = KeepBest.open(tmp_path / "b.json", patience=2, resuming=False)
    _judge_all(killed, {2: 3.0, 4: 2.0, 6: 2.5})
    resumed = KeepBest.open(tmp_path / "b.json", patience=2, resuming=True)
    kept, stops = _judge_all(resumed, {4: 2.0, 6: 2.5, 8: 2.6})
    assert kept == [4]  # the best's weights are kept again: they may have been lost with the process
    assert stops == [8] and (resumed.best, resumed.best_step, resumed.bad) == (2.0, 4, 2)  # step 6 counted once


def test_keep_best_writes_the_state_atomically_after_keeping(tmp_path, monkeypatch):
    from trainers import plan

    path, order = tmp_path / "best.json", []
    monkeypatch.setattr(plan, "write_json", lambda p, obj: order.append(("state", obj["best_step"])))
    KeepBest(path, patience=1).judge(2, 1.0, keep=lambda: order.append(("weights", 2)))
    assert order == [("weights", 2), ("state", 2)]  # a kill in between leaves the older best in both


def test_checkpoint_timer():
    now = [100.0]
    every_step = CheckpointTimer(0, clock=lambda: now[0])
    assert [every_step.due() for _ in range(3)] == [True, True, True]

    timer = CheckpointTimer(1, clock=lambda: now[0])
    due = []
    for t in (130.0, 159.9, 160.0, 200.0, 219.9, 220.0):
        now[0] = t
        due.append(timer.due())
    assert due == [False, False, True, False, False, True]  # at least every minute, counted from the last save


def test_newest_complete_checkpoint(tmp_path):
    hf, mlx = CheckpointFolders("checkpoint-", "trainer_state.json"), CheckpointFolders("step-", "state.json", digits=8)
    assert hf.newest(tmp_path / "missing") is None and mlx.newest(tmp_path) is None
    for name, complete in [
        ("checkpoint-2", True),
        ("checkpoint-10", True),
        ("checkpoint-12", False),
        ("tmp-checkpoint-14", True),
        ("checkpoint-x", True),
        (mlx.name(3), True),
        (".step-00000009.tmp", True),
    ]:
        (tmp_path / name).mkdir()
        if complete:
            (tmp_path / name / ("trainer_state.json" if "checkpoint" in name else "state.json")).write_text("{}")
    assert hf.newest(tmp_path) == tmp_path / "checkpoint-10"  # by number, not by name; 12 is unfinished
    assert mlx.newest(tmp_path) == tmp_path / "step-00000003" and mlx.step(mlx.newest(tmp_path)) == 3
    assert (mlx.name(42), hf.name(42), hf.step(tmp_path / "checkpoint-10")) == ("step-00000042", "checkpoint-42", 10)


def test_the_plan_needs_no_ml_framework():
    code = "import sys, trainers.plan\nprint(sorted(m for m in ('torch', 'mlx', 'transformers') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
