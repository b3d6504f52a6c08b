"""The unsloth backend. On a CUDA GPU it trains for real (LoRA and QLoRA); everywhere else its
wiring is tested against a fake of Unsloth's API (signatures of unsloth 2026.10.7, the `cuda`
extra's pin) that does what Unsloth does with plain peft, so the shared trainer path runs."""

import importlib
import os
import sys
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from docpipe.config import TrainConfig
from docpipe.layout import DatasetLayout, StageWorkLayout
from docpipe.runtime.pretrained import ResolvedBase
from tests.trainers.tiny_model import tiny_dataset
from trainers import data
from trainers.backend import BackendUnavailable, TrainJob


class FakeFastLanguageModel:
    """Unsloth's loader as far as docpipe uses it: load a folder (or an adapter folder, trainable), add LoRA."""

    calls: list[tuple[str, dict]] = []

    @classmethod
    def from_pretrained(cls, model_name, max_seq_length=2048, dtype=None, load_in_4bit=True, **kwargs):
        import json

        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        cls.calls.append(
            ("from_pretrained", dict(model_name=model_name, max_seq_length=max_seq_length, load_in_4bit=load_in_4bit, **kwargs))
        )
        adapter = Path(model_name) / "adapter_config.json"
        base = json.loads(adapter.read_text())["base_model_name_or_path"] if adapter.is_file() else model_name
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        if adapter.is_file():
            model = PeftModel.from_pretrained(model, model_name, is_trainable=True)
        return model, AutoTokenizer.from_pretrained(base)

    @classmethod
    def get_peft_model(
        cls,
        model,
        r=16,
        target_modules=None,
        lora_alpha=16,
        lora_dropout=0.0,
        bias="none",
        use_gradient_checkpointing="unsloth",
        random_state=3407,
        **kwargs,
    ):
        from peft import LoraConfig, get_peft_model

        cls.calls.append(
            (
                "get_peft_model",
                dict(r=r, target_modules=target_modules, lora_alpha=lora_alpha, lora_dropout=lora_dropout, random_state=random_state),
            )
        )
        return get_peft_model(
            model, LoraConfig(r=r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, target_modules=target_modules, task_type="CAUSAL_LM")
        )

    @classmethod
    def for_training(cls, model, use_gradient_checkpointing=True):
        cls.calls.append(("for_training", {}))
        return model


@pytest.fixture
def fake_unsloth(monkeypatch):
    environment = dict(os.environ)
    FakeFastLanguageModel.calls = []
    monkeypatch.setitem(sys.modules, "unsloth", types.SimpleNamespace(FastLanguageModel=FakeFastLanguageModel))
    monkeypatch.delitem(sys.modules, "trainers.unsloth_backend", raising=False)
    yield importlib.import_module("trainers.unsloth_backend")
    sys.modules.pop("trainers.unsloth_backend", None)
    os.environ.clear()
    os.environ.update(environment)


def _job(stage, tiny_model, rows, held_out, work, init=None, **options):
    base = ResolvedBase("tiny", tiny_model, "local folder", None, None, None)
    opts = TrainConfig(**{"batch_size": 4, "learning_rate": 5e-3, "checkpoint_minutes": 60, **options})
    # device "cpu": the fake runs where there is no GPU; on CUDA the same code gets "cuda"
    return TrainJob(stage, base, rows, held_out, StageWorkLayout(work), opts, 1, "cpu", 1, init)


def test_unsloth_backend_loads_offline_adds_lora_and_trains_through_the_shared_path(fake_unsloth, tiny_model, tmp_path):
    rows = data.load(DatasetLayout(tiny_dataset(tmp_path / "dataset", pairs=8)), tmp_path, with_dpo=True)
    sft = fake_unsloth.BACKEND.sft(_job("sft", tiny_model, rows.train, rows.eval, tmp_path / "sft", qlora=True, lora_rank=8))
    name, load = FakeFastLanguageModel.calls[0]
    assert name == "from_pretrained" and load["model_name"] == str(tiny_model)
    assert load["load_in_4bit"] is True and load["local_files_only"] is True and load["max_seq_length"] == 1024
    assert FakeFastLanguageModel.calls[1] == (
        "get_peft_model",
        dict(r=8, target_modules="all-linear", lora_alpha=32, lora_dropout=0.0, random_state=0),
    )
    assert FakeFastLanguageModel.calls[2] == ("for_training", {})
    assert os.environ["UNSLOTH_DISABLE_STATISTICS"] == "1" and os.environ["HF_HUB_OFFLINE"] == "1"  # never phones home
    assert sft.steps == 2 and sft.train_loss
    assert any(w.abs().max() > 0 for k, w in load_file(str(Path(sft.adapter) / "adapter_model.safetensors")).items() if "lora_B" in k)

    FakeFastLanguageModel.calls = []
    dpo = fake_unsloth.BACKEND.dpo(_job("dpo", tiny_model, rows.dpo, [], tmp_path / "dpo", init=Path(sft.adapter)))
    assert FakeFastLanguageModel.calls[0][1]["model_name"] == sft.adapter  # continues the SFT adapter
    assert not any(name == "get_peft_model" for name, _ in FakeFastLanguageModel.calls)
    assert dpo.steps == 2


def test_without_unsloth_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "unsloth", None)
    monkeypatch.delitem(sys.modules, "trainers.unsloth_backend", raising=False)
    with pytest.raises(BackendUnavailable, match=r"pip install 'docpipe\[cuda\]'"):
        importlib.import_module("trainers.unsloth_backend")


def test_unsloth_refusing_to_start_without_a_gpu_is_a_clear_error(monkeypatch, tmp_path):
    (tmp_path / "unsloth.py").write_text("raise NotImplementedError('Unsloth cannot find any torch accelerator? You need a GPU.')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "unsloth", raising=False)
    monkeypatch.delitem(sys.modules, "trainers.unsloth_backend", raising=False)
    with pytest.raises(BackendUnavailable, match="cannot find any torch accelerator.*use --backend hf"):
        importlib.import_module("trainers.unsloth_backend")
    sys.modules.pop("unsloth", None)


@pytest.mark.gpu
@pytest.mark.parametrize("qlora", [False, True], ids=["lora", "qlora"])
def test_unsloth_trains_on_a_gpu(qlora, tiny_model, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU here")
    pytest.importorskip("unsloth")
    from trainers.unsloth_backend import BACKEND

    rows = data.load(DatasetLayout(tiny_dataset(tmp_path / "dataset", pairs=16)), tmp_path, with_dpo=False)
    base = ResolvedBase("tiny", tiny_model, "local folder", None, None, None)
    job = TrainJob(
        "sft", base, rows.train, rows.eval, StageWorkLayout(tmp_path / "sft"), TrainConfig(batch_size=4, qlora=qlora), 2, "cuda", 1
    )
    result = BACKEND.sft(job)
    assert result.steps == 8 and result.train_loss and result.peak_memory_mb > 0
    assert any(w.abs().max() > 0 for k, w in load_file(str(Path(result.adapter) / "adapter_model.safetensors")).items() if "lora_B" in k)
