"""The train stage end to end on a tiny model: the run folder, reuse, resume after kill -9,
clear errors for bad input, and the fallback chain."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

from docpipe.cli import app
from docpipe.config import DocpipeConfig, TrainConfig
from docpipe.contracts import TrainResult
from docpipe.layout import Layout
from docpipe.runtime.hardware import Hardware
from tests.stages import train_run
from tests.trainers.tiny_model import tiny_dataset
from trainers import dispatch

CPU = Hardware(cuda=None, mps=False, apple_silicon=False, cores=2)


def _cfg(tiny_model, **options) -> DocpipeConfig:
    return DocpipeConfig(train=TrainConfig(**{"base_model": str(tiny_model), "batch_size": 4, "threads": 1, **options}))


@pytest.fixture
def out(tmp_path):
    tiny_dataset(tmp_path / "dataset", pairs=16)
    return tmp_path


def test_train_writes_the_run_folder(out, tiny_model):
    result = train_run(out, _cfg(tiny_model, dpo=True, max_steps=2), hardware=CPU)
    run_dir = out / "runs" / result.run_id
    assert TrainResult.model_validate_json((run_dir / "train_result.json").read_text()) == result
    assert json.loads((run_dir / "train_config.json").read_text())["epochs"] == 5  # 16 pairs: auto epochs at the cap
    assert result.backend == "hf" and result.device == "cpu" and result.dispatch.startswith("no CUDA GPU")
    assert result.sft.steps == 2 and result.dpo.steps == 2
    assert result.adapter == str(run_dir / "adapter") and (run_dir / "adapter" / "adapter_config.json").is_file()
    assert (
        load_file(str(run_dir / "adapter" / "adapter_model.safetensors")).keys()
        == load_file(str(Path(result.dpo.adapter) / "adapter_model.safetensors")).keys()
    )
    assert "<|im_start|>" in result.chat_template  # the base's own template, recorded for chat and export
    assert result.base_source == "local folder" and result.dataset_sha256
    assert not list(run_dir.rglob("checkpoint-*"))  # finished stages keep their adapter, not their checkpoints
    from docpipe.status import summarize

    assert f"train: run {result.run_id}: {tiny_model} via hf on cpu, 2 SFT steps + DPO" in summarize(Layout(out))


def test_the_same_command_reuses_a_finished_run_and_a_changed_setting_is_a_new_run(out, tiny_model, monkeypatch):
    first = train_run(out, _cfg(tiny_model, max_steps=2), hardware=CPU)
    monkeypatch.setattr(dispatch, "load", lambda name: pytest.fail("a finished run was trained again"))
    assert train_run(out, _cfg(tiny_model, max_steps=2, threads=2), hardware=CPU) == first  # threads: same result
    monkeypatch.undo()
    assert train_run(out, _cfg(tiny_model, max_steps=3), hardware=CPU).run_id != first.run_id


def test_the_run_records_how_often_it_showed_each_fact(tmp_path, tiny_model):
    from docpipe.contracts import TrainingRecord
    from docpipe.store import read_records, write_jsonl

    tiny_dataset(tmp_path / "dataset", pairs=12)
    records = read_records(tmp_path / "dataset" / "train.jsonl", TrainingRecord)
    # three facts, four wordings each (the tiny dataset's questions stand in for the wordings)
    write_jsonl(tmp_path / "dataset" / "train.jsonl", [r.model_copy(update={"fact_id": f"fact{i % 3}"}) for i, r in enumerate(records)])
    result = train_run(tmp_path, _cfg(tiny_model, target_exposures=8), hardware=CPU)
    assert result.config.epochs == 2 and result.exposures.epochs_reason.startswith("8 exposures per fact / 4.0 wordings")
    per_fact = json.loads((tmp_path / "runs" / result.run_id / "exposures.json").read_text())
    assert set(per_fact) == {"fact0", "fact1", "fact2"}
    kept = result.sft.epochs * result.sft.best_step / result.sft.steps
    assert all(n == pytest.approx(4 * kept, abs=0.01) for n in per_fact.values())
    assert result.exposures.facts == 3 and result.exposures.wordings_per_fact == 4.0


def test_kill_9_mid_training_resumes_from_the_last_checkpoint(out, tiny_model, tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text(f"train: {{base_model: {tiny_model}, batch_size: 2, max_steps: 60, checkpoint_minutes: 0, threads: 1}}\n")
    command = [sys.executable, "-m", "docpipe", "train", "--out", str(out), "--config", str(config)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 240
    while not list(out.glob("runs/*/sft/*/checkpoints/checkpoint-*/trainer_state.json")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.2)
    time.sleep(1.0)  # a few more steps, so the kill lands mid-run
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not list(out.glob("runs/*/train_result.json"))

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    result = TrainResult.model_validate_json(next(out.glob("runs/*/train_result.json")).read_text())
    assert result.sft.resumed_from_step and 0 < result.sft.resumed_from_step < 60
    assert result.sft.steps == 60
    assert [p.step for p in result.sft.train_loss] == sorted({p.step for p in result.sft.train_loss})  # one curve, no repeats

    # Resuming continues the same run: an uninterrupted one has the same curve up to the
    # checkpoint and ends at the same held-out loss (HF restores data order, optimiser and RNG
    # state; the trajectories then differ only in float noise, measured ~1e-5 here).
    fresh = tmp_path / "fresh"
    tiny_dataset(fresh / "dataset", pairs=16)
    subprocess.run([*command[:5], str(fresh), *command[6:]], check=True, capture_output=True, timeout=300)
    whole = TrainResult.model_validate_json(next(fresh.glob("runs/*/train_result.json")).read_text())
    checkpoint = result.sft.resumed_from_step
    assert [p for p in whole.sft.train_loss if p.step <= checkpoint] == [p for p in result.sft.train_loss if p.step <= checkpoint]
    assert result.sft.best_eval_loss == pytest.approx(whole.sft.best_eval_loss, rel=1e-3)


def test_a_run_stopped_during_dpo_does_not_train_sft_again(out, tiny_model, monkeypatch):
    """A kill during DPO once made the same command retrain SFT from scratch (10 minutes on the corpus)."""
    real_load = dispatch.load

    class StopsInDPO:
        def __init__(self, backend):
            self.backend = backend

        def sft(self, job):
            return self.backend.sft(job)

        def dpo(self, job):
            raise KeyboardInterrupt  # Ctrl-C

    monkeypatch.setattr(dispatch, "load", lambda name: StopsInDPO(real_load(name)))
    with pytest.raises(KeyboardInterrupt):
        train_run(out, _cfg(tiny_model, dpo=True, max_steps=2), hardware=CPU)

    class NoSFT(StopsInDPO):
        def sft(self, job):
            pytest.fail("SFT was finished and is trained again")

        def dpo(self, job):
            return self.backend.dpo(job)

    monkeypatch.setattr(dispatch, "load", lambda name: NoSFT(real_load(name)))
    result = train_run(out, _cfg(tiny_model, dpo=True, max_steps=2), hardware=CPU)
    assert result.sft.steps == 2 and result.dpo.steps == 2


def test_bad_input_is_one_clear_line(out, tiny_model, tmp_path):
    runner = CliRunner()
    empty = tmp_path / "nothing"
    empty.mkdir()
    cases = [
        (["--out", str(empty)], "run `docpipe generate --out"),
        (["--out", str(out), "--base-model", "no/such-model"], "docpipe never downloads"),
        (["--out", str(out), "--base-model", str(tiny_model), "--backend", "unsloth"], "needs a CUDA GPU"),
        (
            ["--out", str(out), "--base-model", str(tiny_model), "--backend", "tpu"],
            "train.backend: Input should be 'auto', 'hf', 'unsloth' or 'mlx'",
        ),
    ]
    cases.append((["--out", str(out), "--base-model", str(tiny_model)], "eval.jsonl line 1 is not JSON"))
    for args, message in cases:
        if "is not JSON" in message:
            (out / "dataset" / "eval.jsonl").write_text('{"messages": [\n')  # truncated by a crash
        result = runner.invoke(app, ["train", *args])
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output


def test_a_failing_backend_falls_back_down_the_chain(out, tiny_model, monkeypatch, tmp_path):
    """unsloth -> hf on the GPU -> hf on CPU: here the first two fail (no GPU), CPU trains, and both failures are recorded."""
    broken = tmp_path / "broken_backend.py"
    broken.write_text(
        "class B:\n    name = 'unsloth'\n    def sft(self, job):\n        raise RuntimeError('CUDA out of memory')\nBACKEND = B()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(dispatch.BACKENDS, "unsloth", ("broken_backend", "unsloth", "cuda"))
    gpu = Hardware(cuda="Fake GPU", mps=False, apple_silicon=False, cores=2)
    monkeypatch.setattr(dispatch, "installed", lambda package: True)
    result = train_run(out, _cfg(tiny_model, max_steps=1), hardware=gpu)
    assert (result.backend, result.device) == ("hf", "cpu")
    assert result.fallbacks[0] == "unsloth on cuda: RuntimeError: CUDA out of memory"
    assert result.fallbacks[1].startswith("hf on cuda: ")
