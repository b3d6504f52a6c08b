"""Epochs planned from exposures per fact within the time budget, and the exposures each fact got."""

import pytest

from docpipe.config import TrainConfig
from trainers.data import TrainData
from trainers.exposures import TOKENS_PER_S, auto_epochs, exposures, plan_epochs


def data(wordings: dict[str, int], chars: int = 40_000, kinds: dict | None = None) -> TrainData:
    rows = [{}] * sum(wordings.values())
    return TrainData(rows, [], [], "sha", wordings, kinds or {"qa": len(rows)}, chars)


def test_epochs_follow_the_exposure_target_and_the_wordings_per_fact():
    plan = plan_epochs(data({"a": 3, "b": 3, "c": 3}), TrainConfig(target_exposures=12, time_budget_minutes=None), "hf", "cpu")
    assert plan.epochs == 4 and plan.reason == "12 exposures per fact / 3.0 wordings per fact"
    assert plan_epochs(data({"a": 1}), TrainConfig(target_exposures=12, time_budget_minutes=None), "hf", "cpu").epochs == 12


def test_the_time_budget_caps_the_epochs_but_never_below_one_pass():
    tokens_per_epoch = 100_000
    speed = TOKENS_PER_S[("hf", "cpu")]
    budget = 2 * tokens_per_epoch / speed / 60  # two epochs' worth of minutes at the measured speed
    cfg = TrainConfig(target_exposures=12, time_budget_minutes=budget)
    plan = plan_epochs(data({"a": 3}, chars=4 * tokens_per_epoch), cfg, "hf", "cpu")
    assert plan.epochs == pytest.approx(2.0) and plan.reason.startswith("time budget")
    assert plan_epochs(data({"a": 3}, chars=400 * tokens_per_epoch), cfg, "hf", "cpu").epochs == 1.0
    fast = plan_epochs(data({"a": 3}, chars=4 * tokens_per_epoch), cfg, "unsloth", "cuda")  # a GPU affords the whole target
    assert fast.epochs == 4


def test_given_epochs_win_and_a_dataset_without_fact_ids_falls_back_to_its_size():
    assert plan_epochs(data({"a": 3}), TrainConfig(epochs=1.5), "hf", "cpu").epochs == 1.5
    assert plan_epochs(TrainData([{}] * 400, [], [], "sha"), TrainConfig(), "hf", "cpu").epochs == 5
    assert [auto_epochs(n) for n in (10, 400, 700, 1000, 3000, 100_000)] == [5, 5, 3, 2, 2, 2]


def test_exposures_count_wordings_times_the_epochs_done():
    d = data({"a": 3, "b": 1}, kinds={"qa": 4, "rehearsal": 2, "refusal": 1})
    plan = plan_epochs(d, TrainConfig(target_exposures=6, time_budget_minutes=None), "hf", "cpu")
    summary, per_fact = exposures(d, plan, epochs_done=2.0)
    assert per_fact == {"a": 6.0, "b": 2.0}
    assert (summary.min, summary.median, summary.max, summary.rehearsals, summary.refusals) == (2.0, 4.0, 6.0, 2, 1)
    assert exposures(TrainData([], [], [], "sha"), plan, 1.0) == (None, {})
