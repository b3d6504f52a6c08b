"""The packaged bases, trained for real and exported: F16, Q8_0 and Q4_K_M through the parity gate."""

import importlib.util

import pytest
from gguf import GGUFReader

from docpipe.config import DocpipeConfig, ExportConfig, TrainConfig
from docpipe.runtime import packaged, pretrained
from docpipe.runtime.gguf_vocab import source_fields
from docpipe.runtime.gguf_writer import hyperparameters
from docpipe.runtime.hardware import Hardware
from tests.export.ollama_modelfile import parse
from tests.stages import export_run, train_run
from tests.trainers.tiny_model import tiny_dataset

CPU = Hardware(cuda=None, mps=False, apple_silicon=False, cores=1)


def _train_and_export(tmp_path, base_model: str):
    tiny_dataset(tmp_path / "dataset", pairs=8)
    cfg = DocpipeConfig(
        train=TrainConfig(base_model=base_model, max_steps=2, batch_size=4, threads=1), export=ExportConfig(threads=1, parity_chats=4)
    )
    trained = train_run(tmp_path, cfg, hardware=CPU)
    return trained, export_run(tmp_path, cfg)


@pytest.mark.slow
@pytest.mark.skipif(packaged.packaged_model_path() is None, reason="the packaged model is not installed (requirements/packaged-models.txt)")
def test_the_packaged_default_base_exports_through_the_gate(tmp_path):
    trained, result = _train_and_export(tmp_path, "smollm2-135m-instruct")

    assert result.passed, result.parity
    assert [(p.quantization, p.gate) for p in result.parity] == [("f16", "pass"), ("q8_0", "pass"), ("q4_k_m", "report")]
    assert all(p.token_mismatches == [] for p in result.parity)
    assert result.merge_base == "float32 dequantised from Q4_1" and result.warnings
    sizes = {p.quantization: p.size_mb for p in result.parity}
    assert sizes["f16"] > sizes["q8_0"] > sizes["q4_k_m"] > 50

    # The tokenizer and settings come from the packaged GGUF, and the ones docpipe would compute agree with them.
    source = pretrained.source_gguf(
        tmp_path / "cache" / "base_models" / trained.base_path.split("/")[-1], tmp_path / "cache" / "base_models"
    )
    exported = {f.key: f.value for f in source_fields(tmp_path / "export" / f"{result.name}-f16.gguf")}
    original = {f.key: f.value for f in source_fields(source)}
    assert all(exported[k] == v for k, v in original.items() if k.startswith(("tokenizer.ggml.", "llama.")))
    from transformers import AutoConfig

    computed = {f.key: f.value for f in hyperparameters(AutoConfig.from_pretrained(trained.base_path), "llama")}
    assert {k: v for k, v in original.items() if k.startswith("llama.")} == {k: computed[k] for k in original if k.startswith("llama.")}
    assert len(GGUFReader(tmp_path / "export" / f"{result.name}-q4_k_m.gguf").tensors) == 272

    commands = dict(parse((tmp_path / "export" / "Modelfile").read_text(encoding="utf-8")))
    assert commands["model"] == f"./{result.name}-q8_0.gguf" and commands["license"] == "Apache-2.0"


@pytest.mark.slow
@pytest.mark.skipif(
    any(importlib.util.find_spec(p) is None for p in pretrained.GEMMA_PACKAGES),
    reason=f"Gemma-3-270M is opt-in: {pretrained.GEMMA_INSTALL}",
)
def test_gemma_exports_with_its_sentencepiece_tokenizer_and_one_bos(tmp_path):
    trained, result = _train_and_export(tmp_path, "gemma-3-270m")

    assert result.passed, result.parity
    assert result.chat_template_family == "gemma" and all(p.token_mismatches == [] for p in result.parity)
    fields = {f.key: f.value for f in source_fields(tmp_path / "export" / f"{result.name}-f16.gguf")}
    assert fields["tokenizer.ggml.model"] == "llama" and fields["tokenizer.ggml.add_bos_token"] is True
    template = dict(parse((tmp_path / "export" / "Modelfile").read_text(encoding="utf-8")))["template"]
    assert "<bos>" not in template  # Ollama adds BOS from the GGUF's flag; the template must not add a second
