"""Write a merged Hugging Face model as an F16 (or BF16/F32) GGUF with gguf-py, offline and with
no llama.cpp build: the tensor name map, the per-architecture weight layouts llama.cpp expects,
the hyperparameters, the tokenizer (`vocab`), the chat template and docpipe's provenance.

Architectures: llama (SmolLM2), qwen2, gemma3 (text). When the base came from a GGUF, its
hyperparameter keys are copied from that file rather than recomputed, and the tensor names
written must be exactly the ones it holds: a missed tensor or a misnamed one fails here, not in
a user's Ollama.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docpipe.runtime.gguf_vocab import Field, GGUFError, source_fields


@dataclass(frozen=True)
class _Arch:
    gguf: str  # gguf.MODEL_ARCH member name
    # transformers' GGUF loader un-permutes llama's q/k rows into HF's rotary layout; llama.cpp's
    # kernels want its own (interleaved) layout back.
    permute_qk: bool = False
    # Gemma's RMSNorm multiplies by (1 + w) and HF stores w; llama.cpp multiplies by the stored weight.
    norm_shift: float = 0.0


ARCHS = {
    "llama": _Arch("LLAMA", permute_qk=True),
    "qwen2": _Arch("QWEN2"),
    "gemma3_text": _Arch("GEMMA3", norm_shift=1.0),
}

DTYPES = ("f16", "bf16", "f32")


def architecture(config: Any) -> _Arch:
    arch = ARCHS.get(config.model_type)
    if arch is None:
        raise GGUFError(
            f"docpipe cannot write a GGUF for model type {config.model_type!r} (supported: {', '.join(ARCHS)}); train on one of those bases"
        )
    return arch


def write_gguf(
    path: Path, state: dict[str, Any], config: Any, fields: Iterable[Field], *, dtype: str = "f16", source: Path | None = None
) -> None:
    """Write `state` (a merged model's float tensors) with `fields` (tokenizer, template, provenance) to `path`.

    `source` is the GGUF the base was converted from, if any: its hyperparameters are reused and
    its tensor names checked against the ones written.
    """
    import gguf
    import numpy as np

    if dtype not in DTYPES:
        raise GGUFError(f"unknown GGUF precision {dtype!r}; use one of {', '.join(DTYPES)}")
    arch = architecture(config)
    model_arch = getattr(gguf.MODEL_ARCH, arch.gguf)
    arch_name = gguf.MODEL_ARCH_NAMES[model_arch]
    tensors = dict(_gguf_tensors(state, config, arch, gguf.get_tensor_name_map(model_arch, config.num_hidden_layers)))
    if source is not None:
        hparams = [f for f in source_fields(source) if f.key.startswith(f"{arch_name}.")]
        expected = _source_tensor_names(source)
        if set(tensors) != expected:
            missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
            raise GGUFError(
                f"the GGUF tensors would not match the base's ({len(missing)} missing, e.g. {missing[:2]}; "
                f"{len(extra)} unexpected, e.g. {extra[:2]}): this architecture's mapping is wrong"
            )
    else:
        hparams = hyperparameters(config, arch_name)

    writer = gguf.GGUFWriter(path, arch_name)
    for field in [*hparams, *fields]:
        writer.add_key_value(field.key, field.value, field.vtype, field.sub_type)
    writer.add_file_type(
        {"f16": gguf.LlamaFileType.MOSTLY_F16, "bf16": gguf.LlamaFileType.MOSTLY_BF16, "f32": gguf.LlamaFileType.ALL_F32}[dtype]
    )
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for name, data in tensors.items():
        if data.ndim == 1 or dtype == "f32":  # norms and biases stay f32, as llama.cpp's own converter keeps them
            writer.add_tensor(name, data.astype(np.float32))
        elif dtype == "f16":
            writer.add_tensor(name, data.astype(np.float16))
        else:
            writer.add_tensor(name, gguf.quants.quantize(data, gguf.GGMLQuantizationType.BF16), raw_dtype=gguf.GGMLQuantizationType.BF16)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file(progress=False)
    writer.close()


def _gguf_tensors(state: dict[str, Any], config: Any, arch: _Arch, names: Any):
    """(GGUF name, float32 numpy array) for each tensor, in llama.cpp's layout."""
    heads, kv_heads = config.num_attention_heads, getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    for hf_name, tensor in state.items():
        if hf_name == "lm_head.weight" and getattr(config, "tie_word_embeddings", False):
            continue  # llama.cpp reuses token_embd when the GGUF has no output tensor
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise GGUFError(f"no GGUF name for tensor {hf_name!r}: docpipe's export does not know this model's layout")
        data = tensor.detach().float().cpu().numpy()
        if arch.permute_qk and name.endswith("attn_q.weight"):
            data = rotary_to_gguf(data, heads)
        elif arch.permute_qk and name.endswith("attn_k.weight"):
            data = rotary_to_gguf(data, kv_heads)
        if arch.norm_shift and name.endswith("norm.weight"):
            data = data + arch.norm_shift
        yield name, data


def rotary_to_gguf(weights: Any, heads: int) -> Any:
    """Reorder a q/k projection's rows from HF's half-split rotary layout to llama.cpp's pairwise one.

    HF rotates dimension i with i + d/2 within each head; llama.cpp (like Meta's original
    checkpoints) rotates 2i with 2i + 1. Row j of a head's first half goes to 2j, of its second half to 2j + 1.
    """
    rows = weights.shape[0]
    per_head = rows // heads
    return weights.reshape(heads, 2, per_head // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def hyperparameters(config: Any, arch_name: str) -> list[Field]:
    """The `{arch}.*` keys llama.cpp reads, from an HF config."""
    from gguf import GGUFValueType as T

    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    theta, sliding_theta = _rope(config)
    fields = [
        Field(f"{arch_name}.context_length", config.max_position_embeddings, T.UINT32),
        Field(f"{arch_name}.embedding_length", config.hidden_size, T.UINT32),
        Field(f"{arch_name}.block_count", config.num_hidden_layers, T.UINT32),
        Field(f"{arch_name}.feed_forward_length", config.intermediate_size, T.UINT32),
        Field(f"{arch_name}.attention.head_count", heads, T.UINT32),
        Field(f"{arch_name}.attention.head_count_kv", getattr(config, "num_key_value_heads", None) or heads, T.UINT32),
        Field(f"{arch_name}.attention.layer_norm_rms_epsilon", config.rms_norm_eps, T.FLOAT32),
        Field(f"{arch_name}.rope.freq_base", theta, T.FLOAT32),
    ]
    if arch_name == "gemma3":
        fields += [
            Field(f"{arch_name}.attention.key_length", head_dim, T.UINT32),
            Field(f"{arch_name}.attention.value_length", head_dim, T.UINT32),
            Field(f"{arch_name}.attention.sliding_window", config.sliding_window, T.UINT32),
        ]
        if sliding_theta not in (None, 10000.0):  # llama.cpp's default for Gemma 3's sliding layers
            fields.append(Field(f"{arch_name}.rope.freq_base_swa", sliding_theta, T.FLOAT32))
    else:
        fields += [
            Field(f"{arch_name}.vocab_size", config.vocab_size, T.UINT32),
            Field(f"{arch_name}.rope.dimension_count", head_dim, T.UINT32),
        ]
        if head_dim != config.hidden_size // heads:
            fields += [
                Field(f"{arch_name}.attention.key_length", head_dim, T.UINT32),
                Field(f"{arch_name}.attention.value_length", head_dim, T.UINT32),
            ]
    return fields


def _rope(config: Any) -> tuple[float, float | None]:
    """(rope theta, sliding-window layers' theta or None); only plain rotary embeddings are supported."""
    params = dict(getattr(config, "rope_parameters", None) or {})
    full, sliding = params.get("full_attention", params), params.get("sliding_attention")
    for p in (full, sliding or {}):
        if p.get("rope_type", "default") != "default":
            raise GGUFError(f"rope scaling {p['rope_type']!r} is not supported by docpipe's GGUF export yet")
    theta = full.get("rope_theta", getattr(config, "rope_theta", None))
    if theta is None:
        raise GGUFError("the model config has no rope_theta: cannot write its GGUF")
    return float(theta), (float(sliding["rope_theta"]) if sliding and "rope_theta" in sliding else None)


def _source_tensor_names(source: Path) -> set[str]:
    from gguf import GGUFReader

    return {tensor.name for tensor in GGUFReader(source).tensors}
