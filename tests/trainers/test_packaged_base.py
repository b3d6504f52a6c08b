"""The default a fresh CPU machine gets: the packaged SmolLM2-135M-Instruct, trained for real."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from docpipe.config import DocpipeConfig, TrainConfig
from docpipe.runtime import packaged
from docpipe.runtime.hardware import Hardware
from tests.stages import train_run
from tests.trainers.tiny_model import tiny_dataset


@pytest.mark.slow
@pytest.mark.skipif(packaged.packaged_model_path() is None, reason="the packaged model is not installed (requirements/packaged-models.txt)")
def test_the_packaged_default_base_trains_on_cpu(tmp_path):
    tiny_dataset(tmp_path / "dataset", pairs=8)
    cfg = DocpipeConfig(train=TrainConfig(max_steps=2, batch_size=4, threads=1))  # no base_model: the default
    result = train_run(tmp_path, cfg, hardware=Hardware(cuda=None, mps=False, apple_silicon=False, cores=1))

    assert result.base_model == "smollm2-135m-instruct" and result.base_source == "packaged gguf"
    assert result.base_sha256 == packaged.MODEL_SHA256 and result.dequantised_from == "Q4_1"
    assert result.base_license == "Apache-2.0"
    assert result.chat_template.startswith("{% for message in messages %}") and "<|im_start|>" in result.chat_template
    assert result.sft.steps == 2 and all(0 < p.loss < 20 for p in result.sft.train_loss + result.sft.eval_loss)
    weights = load_file(str(Path(result.adapter) / "adapter_model.safetensors"))
    assert len(weights) == 30 * 7 * 2  # LoRA A and B on the 7 linear layers of each of the 30 blocks
    assert any(w.abs().max() > 0 for k, w in weights.items() if "lora_B" in k)

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(result.base_path, dtype=torch.float32)
    ids = torch.tensor([[1, 4093, 198, 65, 47, 2]])
    with torch.no_grad():
        before = base(ids).logits
        after = PeftModel.from_pretrained(base, result.adapter)(ids).logits
    assert not torch.allclose(before, after)
