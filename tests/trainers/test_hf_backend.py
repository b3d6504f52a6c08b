"""The hf backend on a tiny real model: SFT and DPO train, log their loss, change the adapter,
and leave an adapter plain peft loads."""

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from docpipe.config import TrainConfig
from docpipe.events import ignore
from docpipe.layout import DatasetLayout, StageWorkLayout
from docpipe.runtime.pretrained import ResolvedBase
from tests.trainers.tiny_model import tiny_dataset
from trainers import data
from trainers.backend import TrainJob
from trainers.hf_backend import BACKEND


@pytest.fixture(autouse=True)
def one_thread():
    # Tests pin one thread: two threads on a busy 2-core machine run up to 100x slower.
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _job(stage, tiny_model, rows, held_out, work, init=None, progress=None, **options):
    base = ResolvedBase("tiny", tiny_model, "local folder", None, None, None)
    opts = TrainConfig(**{"batch_size": 4, "learning_rate": 5e-3, "checkpoint_minutes": 60, **options})
    return TrainJob(stage, base, rows, held_out, StageWorkLayout(work), opts, 2, "cpu", 1, init, progress or ignore)


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    folder = tiny_dataset(tmp_path_factory.mktemp("data") / "dataset", pairs=16)
    return data.load(DatasetLayout(folder), folder.parent, with_dpo=True)


@pytest.fixture(scope="module")
def sft(tiny_model, rows, tmp_path_factory):
    seen = []
    result = BACKEND.sft(_job("sft", tiny_model, rows.train, rows.eval, tmp_path_factory.mktemp("sft"), progress=seen.append))
    return result, seen


def _lora(adapter: str) -> dict[str, torch.Tensor]:
    return load_file(str(Path(adapter) / "adapter_model.safetensors"))


def test_sft_trains_logs_loss_and_changes_the_adapter(sft):
    result, seen = sft
    assert result.steps == 8  # 16 pairs / batch 4 * 2 epochs: steps follow the data, not a fixed count
    assert result.train_loss and all(math.isfinite(p.loss) for p in result.train_loss)
    assert result.train_loss[-1].loss < result.train_loss[0].loss
    assert len(result.eval_loss) >= 2 and result.best_eval_loss == min(p.loss for p in result.eval_loss)
    weights = _lora(result.adapter)
    lora_b = [w for name, w in weights.items() if "lora_B" in name]
    assert lora_b and any(w.abs().max() > 0 for w in lora_b)  # B starts at zero: nonzero means it trained
    assert result.tokens > 0 and result.tokens_per_s > 0 and result.peak_memory_mb > 0
    assert seen and seen[-1].step == result.steps and seen[-1].total == 8 and seen[-1].metrics.get("loss") is not None
    assert {(e.stage, e.phase) for e in seen} == {("train", "sft")}


def test_sft_adapter_loads_with_plain_peft_and_changes_the_output(sft, tiny_model):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([[5, 17, 42, 99, 3]])
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    before = base(ids).logits
    tuned = PeftModel.from_pretrained(base, sft[0].adapter)
    assert not torch.allclose(before, tuned(ids).logits)


def test_loss_falls_only_on_the_assistant_tokens(tiny_model, rows):
    """The prompt (system + user) carries no loss, whatever the chat template looks like."""
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    args = SFTConfig(output_dir="/tmp/unused", completion_only_loss=True, report_to="none", use_cpu=True)
    trainer = SFTTrainer(model=str(tiny_model), args=args, train_dataset=Dataset.from_list(rows.train[:2]), processing_class=tokenizer)
    batch = trainer.data_collator([trainer.train_dataset[0]])
    labelled = tokenizer.decode(batch["input_ids"][0][batch["labels"][0] != -100])
    assistant = rows.train[0]["completion"][0]["content"]
    assert labelled.startswith(assistant) and "<|im_end|>" in labelled
    assert rows.train[0]["prompt"][1]["content"] not in labelled


def test_dpo_continues_the_sft_adapter_and_saves_only_it(sft, tiny_model, rows, tmp_path):
    result = BACKEND.dpo(_job("dpo", tiny_model, rows.dpo[:12], rows.dpo[12:], tmp_path, init=Path(sft[0].adapter), dpo_learning_rate=5e-3))
    assert result.steps == 6  # 12 pairs / 4 per step, 2 epochs
    assert result.train_loss and all(math.isfinite(p.loss) for p in result.train_loss)
    before, after = _lora(sft[0].adapter), _lora(result.adapter)
    assert before.keys() == after.keys()  # one adapter: the frozen reference copy is not saved
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert not (Path(result.adapter) / "ref").exists()


def test_early_stopping_keeps_the_best_adapter(tiny_model, rows, tmp_path):
    # A learning rate this high makes the held-out loss climb after the first measurement.
    result = BACKEND.sft(
        _job("sft", tiny_model, rows.train, rows.eval, tmp_path, learning_rate=3.0, evals_per_epoch=4, early_stopping_patience=1)
    )
    assert result.stopped_early
    assert result.steps < 8
    assert result.best_eval_loss == min(p.loss for p in result.eval_loss)
    assert result.best_step == next(p.step for p in result.eval_loss if p.loss == result.best_eval_loss)


def test_long_pairs_are_split_into_micro_batches_that_fit_in_memory(monkeypatch, tiny_model):
    """A batch of long pairs once took 24 GB on CPU (8 x 837 tokens of SmolLM2) and was killed:
    the pass size now follows free memory, and a step still holds batch_size pairs."""
    from types import SimpleNamespace

    from trainers import hf_backend

    smollm2 = SimpleNamespace(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, vocab_size=49152)
    job = _job("sft", tiny_model, [], [], Path("unused"), batch_size=8)
    assert 3.8e6 < hf_backend._bytes_per_token(smollm2) < 4.8e6  # measured under TRL: about 4.2 MB a token
    monkeypatch.setattr(hf_backend, "_free_memory", lambda device: 23 * 2**30)
    assert hf_backend.micro_batch(job, SimpleNamespace(config=smollm2), 837) == 2  # 23 GB free: 3 x 837 fit in half
    assert hf_backend.micro_batch(job, SimpleNamespace(config=smollm2), 140) == 8
    monkeypatch.setattr(hf_backend, "_free_memory", lambda device: 4 * 2**30)
    assert hf_backend.micro_batch(job, SimpleNamespace(config=smollm2), 837) == 1  # never below one pair
    plan = hf_backend._Plan(job, 2)
    assert (plan.micro_batch, plan.accumulation) == (2, 4)


def test_the_plain_cpu_loss_equals_trls(tiny_model, rows, tmp_path):
    """On CPU the loss is transformers' plain cross-entropy instead of TRL's chunked LM head (a third
    of each step): same labels, so the same number."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from trainers.hf_backend import _PlainLossSFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    args = SFTConfig(output_dir=str(tmp_path), completion_only_loss=True, report_to="none", use_cpu=True, bf16=False)
    losses = []
    for trainer_class in (SFTTrainer, _PlainLossSFTTrainer):
        trainer = trainer_class(model=model, args=args, train_dataset=Dataset.from_list(rows.train[:4]), processing_class=tokenizer)
        batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
        with torch.no_grad():
            losses.append(trainer.compute_loss(model, dict(batch)).item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
