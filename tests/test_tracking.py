"""`docpipe build --track mlflow` against a real MLflow file store: each journaled step is one MLflow run with
its config, move, measures and artifacts; logging again adds nothing; the best step carries the `champion`
alias, and the alias moves when the best changes."""

from __future__ import annotations

import json

import pytest

from docpipe.config import DocpipeConfig
from docpipe.layout import Layout
from docpipe.loop.actions import Move
from docpipe.loop.journal import Journal, StepRecord

mlflow = pytest.importorskip("mlflow")

from docpipe.build.tracking import CHAMPION, MlflowTracker  # noqa: E402


def test_steps_become_mlflow_runs_once_and_the_best_is_the_champion(tmp_path):
    layout = Layout(tmp_path / "out")
    run = layout.run("r1")
    run.eval_report.parent.mkdir(parents=True)
    run.eval_report.write_text(json.dumps({"verdict": "ok"}))
    tracker = MlflowTracker(layout)
    journal = Journal(layout.journal_jsonl, layout.journal_md, "docpipe build docs", tracker.log)
    config = DocpipeConfig().model_dump(mode="json")
    measures = {"verdict": "ungrounded", "new_words_f1": 0.31, "gain_correct": {"value": 0.1, "low": 0.02, "high": 0.2, "n": 40}}
    baseline = StepRecord(step=0, parent=None, config=config, config_fingerprint="aa", outcome="baseline", run="r0", measures=measures)
    faster = Move(action="learning_rate", value=1e-3, why="learn faster")
    kept = StepRecord(step=1, parent=0, move=faster, config=config, config_fingerprint="bb", outcome="kept", run="r1", measures=measures)
    journal.append(baseline)
    tracker.crown(baseline)
    journal.append(kept)
    for step in journal.steps:  # what a resumed build does: nothing is logged twice
        tracker.log(step)
    tracker.crown(kept)

    client = mlflow.MlflowClient(tracking_uri=tracker.uri)
    runs = {r.data.tags["docpipe.step"]: r for r in client.search_runs([tracker.experiment_id])}
    assert sorted(runs) == ["0", "1"]
    second = runs["1"]
    assert second.data.params["move"] == "learning_rate = 0.001" and second.data.params["train.learning_rate"] == str(
        config["train"]["learning_rate"]
    )
    assert second.data.params["parent"] == "0" and second.data.params["fingerprint"] == "bb"
    assert second.data.metrics["new_words_f1"] == 0.31 and second.data.metrics["gain_correct_low"] == 0.02
    assert second.data.tags["outcome"] == "kept" and second.info.status == "FINISHED"
    artifacts = {a.path for a in client.list_artifacts(second.info.run_id)}
    assert {"journal.md", "eval.json"} <= artifacts
    assert client.get_model_version_by_alias(tracker.name, CHAMPION).run_id == second.info.run_id
    assert len(client.search_model_versions(f"name = '{tracker.name}'")) == 2  # the alias moved from step 0 to step 1
