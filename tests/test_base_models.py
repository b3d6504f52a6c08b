"""Base models resolve offline: a local folder, the local HF cache, or the packaged GGUF converted once."""

from __future__ import annotations

import json

import pytest

from docpipe import base_models
from docpipe.base_models import BaseModelError, resolve
from docpipe.llm.packaged import packaged_model_path

pytest.importorskip("transformers", reason="base models need docpipe[train]")


def test_a_local_folder_is_used_as_it_is(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    LlamaForCausalLM(LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                 num_key_value_heads=2, vocab_size=64)).save_pretrained(tmp_path / "tiny")
    base = resolve(str(tmp_path / "tiny"), tmp_path / "cache")
    assert base.path == (tmp_path / "tiny").resolve() and base.source == "local folder" and base.dequantised_from is None


def test_a_folder_that_is_not_a_model_is_refused(tmp_path):
    with pytest.raises(BaseModelError, match="no config.json"):
        resolve(str(tmp_path), tmp_path / "cache")


def test_a_model_id_missing_from_the_local_cache_is_never_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    with pytest.raises(BaseModelError, match="never downloads"):
        resolve("HuggingFaceTB/SmolLM2-360M-Instruct", tmp_path / "cache")


def test_an_interrupted_conversion_leaves_nothing_half_written(tmp_path, monkeypatch):
    def crash(gguf, out):
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(base_models, "_convert", crash)
    monkeypatch.setitem(base_models.PACKAGED, "fake", base_models._Packaged(lambda: tmp_path / "x.gguf", "ab" * 32, "Q4_1", "MIT"))
    with pytest.raises(KeyboardInterrupt):
        resolve("fake", tmp_path)
    assert list((tmp_path / "base_models").iterdir()) == []


@pytest.mark.slow
@pytest.mark.skipif(packaged_model_path() is None, reason="the packaged model is not installed (requirements/packaged-models.txt)")
def test_the_packaged_default_converts_once_and_loads_with_its_chat_template(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = resolve(None, tmp_path)
    assert (base.source, base.dequantised_from, base.license) == ("packaged gguf", "Q4_1", "Apache-2.0")
    assert json.loads((base.path / "docpipe_base.json").read_text())["sha256"] == base.sha256
    weights = base.path / "model.safetensors"
    converted_at = weights.stat().st_mtime_ns
    assert resolve("SmolLM2-135M-Instruct", tmp_path).path == base.path  # reused, not converted again
    assert weights.stat().st_mtime_ns == converted_at
    tokenizer = AutoTokenizer.from_pretrained(base.path)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert "<|im_start|>user\nhi<|im_end|>" in prompt and prompt.endswith("<|im_start|>assistant\n")
    model = AutoModelForCausalLM.from_pretrained(base.path)
    ids = tokenizer("The capital of France is", return_tensors="pt")
    assert "Paris" in tokenizer.decode(model.generate(**ids, max_new_tokens=4, do_sample=False)[0])
