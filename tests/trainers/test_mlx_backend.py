"""The mlx backend on a tiny real model: it trains, masks the prompt, resumes, stops early, and its
peft-format adapter gives the same logits in torch as the adapter does in mlx."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from docpipe.config import TrainConfig
from docpipe.events import ignore
from docpipe.layout import StageWorkLayout
from docpipe.runtime.pretrained import ResolvedBase
from tests.trainers.tiny_model import tiny_dataset
from trainers.backend import BackendUnavailable, TrainJob

pytest.importorskip("mlx_lm", reason="the mlx backend needs docpipe[mlx]")

import mlx.core as mx

from trainers import mlx_backend

pytestmark = pytest.mark.mlx


def _rows(folder: Path, name: str) -> list[dict]:
    records = [json.loads(line) for line in (folder / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]
    return [{"prompt": r["messages"][:2], "completion": r["messages"][2:]} for r in records]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tiny_dataset(tmp_path_factory.mktemp("tiny-data"), pairs=16)
    return _rows(folder, "train"), _rows(folder, "eval")


def _job(tiny_model, data, work_dir: Path, progress: list | None = None, **options) -> TrainJob:
    # A high learning rate so a few steps move the adapter far enough to see in the logits.
    settings = {
        "batch_size": 4,
        "learning_rate": 1e-2,
        "lora_rank": 4,
        "lora_alpha": 8,
        "checkpoint_minutes": 0,
        "max_seq_tokens": 256,
        **options,
    }
    base = ResolvedBase("tiny", tiny_model, "local folder", None, None, None)
    return TrainJob(
        "sft",
        base,
        data[0],
        data[1],
        StageWorkLayout(work_dir),
        TrainConfig(**settings),
        epochs=1.0,
        device="cpu",
        threads=1,
        events=progress.append if progress is not None else ignore,
    )


@pytest.fixture(scope="module")
def trained(tiny_model, data, tmp_path_factory):
    progress = []
    job = _job(tiny_model, data, tmp_path_factory.mktemp("mlx-run"), progress, max_steps=6, evals_per_epoch=2)
    return job, mlx_backend.BACKEND.sft(job), progress


def test_sft_logs_finite_train_and_held_out_loss(trained):
    _, result, progress = trained
    assert result.steps == 6 and result.stage == "sft"
    assert [p.step for p in result.train_loss] == [1, 2, 3, 4, 5, 6]
    assert all(math.isfinite(p.loss) for p in result.train_loss + result.eval_loss)
    assert result.eval_loss and result.eval_loss[-1].step == 6  # measured during training and at the end
    assert result.best_eval_loss == min(p.loss for p in result.eval_loss)
    assert result.tokens > 0 and result.tokens_per_s > 0 and result.peak_memory_mb > 0
    assert [p.step for p in progress] == [1, 2, 3, 4, 5, 6] and progress[-1].total == 6
    assert {(p.stage, p.phase) for p in progress} == {("train", "sft")} and all("loss" in p.metrics for p in progress)


def test_adapter_is_peft_format_and_trained(trained):
    job, result, _ = trained
    adapter = Path(result.adapter)
    assert adapter == job.work.adapter
    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    assert (config["peft_type"], config["task_type"], config["r"], config["lora_alpha"]) == ("LORA", "CAUSAL_LM", 4, 8)
    assert "model.layers.1.mlp.down_proj" in config["target_modules"] and len(config["target_modules"]) == 14
    weights = mx.load(str(adapter / "adapter_model.safetensors"))
    b = weights["base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight"]
    assert b.shape == (32, 4) and mx.abs(b).max().item() > 0  # lora_B starts at zero: nonzero means it learnt
    assert weights["base_model.model.model.layers.0.mlp.up_proj.lora_A.weight"].shape == (4, 64)


def test_peft_adapter_gives_mlx_logits_in_torch(trained, tiny_model):
    torch = pytest.importorskip("torch")
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(1)
    job, result, _ = trained
    model, tokenizer = mlx_backend._build_model(tiny_model, 4, 8.0, 0.0, 0, init_adapter=Path(result.adapter))
    model.eval()
    ids = tokenizer.apply_chat_template(job.eval_rows[0]["prompt"] + job.eval_rows[0]["completion"])
    mlx_logits = torch.tensor(model(mx.array([ids])).tolist())

    base = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    with torch.no_grad():
        base_logits = base(torch.tensor([ids])).logits
        tuned = peft.PeftModel.from_pretrained(base, result.adapter).eval()
        peft_logits = tuned(torch.tensor([ids])).logits
    tolerance = 1e-3 * max(1.0, peft_logits.abs().max().item())
    assert (peft_logits - mlx_logits).abs().max().item() < tolerance
    assert (base_logits - mlx_logits).abs().max().item() > 10 * tolerance  # the adapter does change the model


def test_peft_adapter_holds_the_best_weights(trained):
    job, result, _ = trained
    best = mx.load(str(job.work.checkpoints / f"step-{result.steps:08d}" / "best.safetensors"))
    model, _ = mlx_backend._build_model(job.base.path, 4, 8.0, 0.0, 0)
    for name, value in mlx_backend._from_peft(model, Path(result.adapter)):
        assert mx.allclose(value, best[name]).item(), name


def test_prompt_tokens_carry_no_loss(tiny_model, data):
    _, tokenizer = mlx_backend._build_model(tiny_model, 4, 8.0, 0.0, 0)
    short = {"prompt": [{"role": "user", "content": "When?"}], "completion": [{"role": "assistant", "content": "1932."}]}
    encoded = mlx_backend._encode(tokenizer, [data[0][0], short], max_seq_tokens=256)
    for (tokens, offset), row in zip(encoded, [data[0][0], short]):
        assert tokenizer.decode(tokens[offset:]) == row["completion"][0]["content"] + "<|im_end|>\n"
        assert tokenizer.decode(tokens[:offset]).endswith("<|im_start|>assistant\n")

    batch, lengths = mlx_backend._batch(encoded)
    mask = mlx_backend._target_mask(lengths, batch.shape[1])
    for row, (tokens, offset) in enumerate(encoded):
        # target t is token t + 1: exactly the answer's tokens, none of the prompt, none of the padding
        expected = [offset <= t + 1 < len(tokens) for t in range(batch.shape[1] - 1)]
        assert mask[row].tolist() == expected
    assert len(encoded[1][0]) < batch.shape[1]  # the short row is padded, so the padding check is real


def test_truncation_keeps_offsets_in_range(tiny_model, data):
    _, tokenizer = mlx_backend._build_model(tiny_model, 4, 8.0, 0.0, 0)
    ((tokens, offset),) = mlx_backend._encode(tokenizer, data[0][:1], max_seq_tokens=32)
    assert len(tokens) == 32 and offset <= 32


def test_resume_carries_on_from_the_checkpoint(tiny_model, data, tmp_path):
    first = mlx_backend.BACKEND.sft(_job(tiny_model, data, tmp_path, max_steps=2, checkpoint_minutes=60))
    assert first.resumed_from_step is None and (tmp_path / "checkpoints" / "step-00000002").is_dir()

    progress = []
    again = mlx_backend.BACKEND.sft(_job(tiny_model, data, tmp_path, progress, max_steps=4, checkpoint_minutes=60))
    assert again.resumed_from_step == 2 and again.steps == 4
    assert [p.step for p in progress] == [3, 4]  # only the new steps were trained in this process
    assert [p.step for p in again.train_loss] == [1, 2, 3, 4]  # the history before the stop is kept
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-00000004"]


class _Killed(Exception):
    pass


def _kill_at(step: int):
    def on_event(event):
        if event.step == step:
            raise _Killed  # after step 3 is trained, before its checkpoint: like kill -9

    return on_event


def test_run_killed_midway_ends_as_if_never_stopped(tiny_model, data, tmp_path):
    straight = mlx_backend.BACKEND.sft(_job(tiny_model, data, tmp_path / "a", max_steps=5))
    killed = _job(tiny_model, data, tmp_path / "b", max_steps=5)
    with pytest.raises(_Killed):
        mlx_backend.BACKEND.sft(TrainJob(**{**killed.__dict__, "events": _kill_at(3)}))
    resumed = mlx_backend.BACKEND.sft(killed)  # the same command again

    assert resumed.resumed_from_step == 2 and resumed.steps == 5
    assert [p.loss for p in resumed.eval_loss] == pytest.approx([p.loss for p in straight.eval_loss], abs=1e-5)
    a = mx.load(str(tmp_path / "a" / "adapter" / "adapter_model.safetensors"))
    b = mx.load(str(tmp_path / "b" / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(mx.allclose(a[k], b[k], atol=1e-6).item() for k in a)


def test_run_killed_after_its_best_measurement_keeps_that_adapter(tiny_model, data, tmp_path):
    """Killed after the held-out measurement at step 4 (the best so far) but before its checkpoint: the
    resumed run replays step 4 without counting that measurement twice, and keeps its weights."""
    straight = mlx_backend.BACKEND.sft(_job(tiny_model, data, tmp_path / "a", max_steps=4))
    assert straight.best_step == 4 and [p.step for p in straight.eval_loss] == [2, 4]
    killed = _job(tiny_model, data, tmp_path / "b", max_steps=4)
    with pytest.raises(_Killed):
        mlx_backend.BACKEND.sft(TrainJob(**{**killed.__dict__, "events": _kill_at(4)}))
    assert json.loads(killed.work.best_state.read_text())["judged"] == 4  # the kill came after the measurement
    resumed = mlx_backend.BACKEND.sft(killed)

    assert resumed.resumed_from_step == 3 and (resumed.best_step, resumed.stopped_early) == (4, False)
    assert resumed.best_eval_loss == pytest.approx(straight.best_eval_loss, abs=1e-5)
    a = mx.load(str(tmp_path / "a" / "adapter" / "adapter_model.safetensors"))
    b = mx.load(str(tmp_path / "b" / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(mx.allclose(a[k], b[k], atol=1e-6).item() for k in a)


def test_checkpoints_of_older_versions_still_resume(tmp_path):
    # They held the keep-best figures too; those now live in job.work.best_state.
    path = tmp_path / "state.json"
    path.write_text(
        json.dumps(
            {
                "step": 3,
                "train_loss": [],
                "eval_loss": [],
                "best_loss": 2.0,
                "best_step": 2,
                "bad_evals": 1,
                "stopped_early": False,
                "fingerprint": {"rows": 16},
            }
        )
    )
    assert mlx_backend._State.read(path) == mlx_backend._State(step=3, fingerprint={"rows": 16})


def test_stops_early_and_keeps_the_best_adapter(tiny_model, data, tmp_path, monkeypatch):
    held_out = iter([3.0, 2.0, 2.5, 2.6, 2.7, 2.8])
    monkeypatch.setattr(mlx_backend, "_held_out_loss", lambda model, batches: next(held_out))
    result = mlx_backend.BACKEND.sft(_job(tiny_model, data, tmp_path, max_steps=8, evals_per_epoch=4, early_stopping_patience=2))
    assert result.stopped_early and result.steps == 4
    assert (result.best_step, result.best_eval_loss) == (2, 2.0)
    assert [p.loss for p in result.eval_loss] == [3.0, 2.0, 2.5, 2.6]


def test_trains_on_from_an_init_adapter(trained, tiny_model, data, tmp_path):
    _, result, _ = trained
    # A vanishing learning rate: one step later the adapter is still the one it started from.
    job = _job(tiny_model, data, tmp_path, max_steps=1, learning_rate=1e-12, lora_rank=8, lora_alpha=1)
    again = mlx_backend.BACKEND.sft(TrainJob(**{**job.__dict__, "init_adapter": Path(result.adapter)}))
    start = mx.load(str(Path(result.adapter) / "adapter_model.safetensors"))
    end = mx.load(str(Path(again.adapter) / "adapter_model.safetensors"))
    assert all(mx.allclose(start[k], end[k], atol=1e-6).item() for k in start)
    config = json.loads((Path(again.adapter) / "adapter_config.json").read_text(encoding="utf-8"))
    assert (config["r"], config["lora_alpha"]) == (4, 8)  # the init adapter's shape wins over the config's


def test_without_held_out_rows_the_last_adapter_is_kept(tiny_model, data, tmp_path):
    job = _job(tiny_model, (data[0], []), tmp_path, max_steps=2, batch_size=64)  # one batch larger than the data
    result = mlx_backend.BACKEND.sft(job)
    assert result.eval_loss == [] and result.best_eval_loss is None and result.steps == 2
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()


def test_without_mlx_the_import_says_what_to_install():
    code = (
        "import sys\nsys.modules['mlx'] = sys.modules['mlx_lm'] = None\n"
        "try:\n    import trainers.mlx_backend\nexcept Exception as exc:\n    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "BackendUnavailable mlx backend needs mlx and mlx-lm: pip install 'docpipe[mlx]'"


def test_dpo_is_left_to_the_hf_backend(tiny_model, data, tmp_path):
    with pytest.raises(BackendUnavailable, match="hf backend"):
        mlx_backend.BACKEND.dpo(_job(tiny_model, data, tmp_path))
