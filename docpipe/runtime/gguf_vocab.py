"""GGUF key/value fields: reading them from a GGUF, the tokenizer's `tokenizer.ggml.*` keys, and the chat
template and system prompt docpipe writes beside them (export and evaluation both write GGUFs).

When the base came from a GGUF, its tokenizer keys are copied as they are: a GGUF -> HF -> GGUF
round trip was seen to turn Gemma's SentencePiece tokenizer into a mislabelled BPE one. A base
that came as an HF folder gets its keys from tokenizer.json (byte-level BPE: SmolLM2, Qwen2,
Llama 3 style); the parity gate then checks token ids on probe strings either way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docpipe.errors import DocpipeError

# GGUF keys docpipe reads and writes besides the tokenizer's; the system prompt is docpipe's own key.
CHAT_TEMPLATE = "tokenizer.chat_template"
SYSTEM_PROMPT = "docpipe.system_prompt"

# A byte-level BPE's pre-tokenizer regex -> the label llama.cpp's pre-tokenizer table knows it by.
_SPLIT_LABELS = {
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+": "qwen2",
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+": "llama-bpe",
}


class GGUFError(DocpipeError, RuntimeError):
    """A model docpipe cannot write as a GGUF (an unknown architecture, tokenizer or layout); one line that says why."""


@dataclass(frozen=True)
class Field:
    key: str
    value: Any
    vtype: Any  # gguf.GGUFValueType
    sub_type: Any = None  # the element type of an array


def source_fields(path: Path) -> list[Field]:
    """Every key/value of a GGUF file except the ones its writer derives (version, counts, architecture)."""
    from gguf import GGUFReader, GGUFValueType

    fields = []
    for key, field in GGUFReader(path).fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        sub = field.types[-1] if field.types[0] == GGUFValueType.ARRAY else None
        fields.append(Field(key, field.contents(), field.types[0], sub))
    return fields


def tokenizer_fields(source: Path | None, folder: Path, tokenizer: Any, vocab_size: int) -> list[Field]:
    """The `tokenizer.ggml.*` keys: copied from `source` (the GGUF a packaged base came from), else built from the HF folder."""
    return gguf_tokenizer(source) if source else hf_tokenizer(folder, tokenizer, vocab_size)


def chat_fields(chat_template: str, system_prompt: str | None) -> list[Field]:
    """The training chat template, and the system prompt `docpipe chat` starts with (when there is one)."""
    from gguf import GGUFValueType as T

    fields = [Field(CHAT_TEMPLATE, chat_template, T.STRING)]
    return fields + ([Field(SYSTEM_PROMPT, system_prompt, T.STRING)] if system_prompt is not None else [])


def gguf_tokenizer(path: Path) -> list[Field]:
    """The tokenizer keys of the GGUF a base was converted from (its chat template excepted: training's wins)."""
    return [f for f in source_fields(path) if f.key.startswith("tokenizer.ggml.")]


def hf_tokenizer(folder: Path, tokenizer: Any, vocab_size: int) -> list[Field]:
    """`tokenizer.ggml.*` keys from an HF folder's byte-level BPE tokenizer, padded to the model's vocab size."""
    from gguf import GGUFValueType as T
    from gguf import TokenType

    spec = tokenizer_spec(tokenizer)
    if spec is None:
        raise GGUFError(
            f"the tokenizer in {folder} is not a fast (tokenizers) one: docpipe exports byte-level BPE "
            "tokenizers from HF folders, and SentencePiece ones only from a base that came as a GGUF"
        )
    model = spec["model"]
    if model.get("type") != "BPE" or model.get("byte_fallback"):
        raise GGUFError(f"the tokenizer in {folder} is not a byte-level BPE: docpipe cannot write its GGUF vocabulary")
    added = {token["id"]: token for token in spec.get("added_tokens", [])}
    by_id = {i: text for text, i in model["vocab"].items()} | {i: t["content"] for i, t in added.items()}
    if max(by_id) >= vocab_size:
        raise GGUFError(f"the tokenizer has ids up to {max(by_id)} but the model only {vocab_size} embeddings")
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in by_id:  # embedding rows the tokenizer never produces (vocabularies padded for speed)
            tokens.append(f"[PAD{i}]")
            types.append(TokenType.UNUSED)
        else:
            tokens.append(by_id[i])
            types.append(TokenType.NORMAL if i not in added else TokenType.CONTROL if added[i].get("special") else TokenType.USER_DEFINED)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    probe = tokenizer("a")["input_ids"]  # what the tokenizer adds on its own, as the model saw it in training
    fields = [
        Field("tokenizer.ggml.model", "gpt2", T.STRING),
        Field("tokenizer.ggml.pre", _pre_label(spec.get("pre_tokenizer"), folder), T.STRING),
        Field("tokenizer.ggml.tokens", tokens, T.ARRAY, T.STRING),
        Field("tokenizer.ggml.token_type", [int(t) for t in types], T.ARRAY, T.INT32),
        Field("tokenizer.ggml.merges", merges, T.ARRAY, T.STRING),
        Field("tokenizer.ggml.add_bos_token", tokenizer.bos_token_id is not None and probe[:1] == [tokenizer.bos_token_id], T.BOOL),
        Field("tokenizer.ggml.add_eos_token", tokenizer.eos_token_id is not None and probe[-1:] == [tokenizer.eos_token_id], T.BOOL),
    ]
    for key, token_id in (
        ("bos", tokenizer.bos_token_id),
        ("eos", tokenizer.eos_token_id),
        ("padding", tokenizer.pad_token_id),
        ("unknown", tokenizer.unk_token_id),
    ):
        if token_id is not None:
            fields.append(Field(f"tokenizer.ggml.{key}_token_id", token_id, T.UINT32))
    return fields


def tokenizer_spec(tokenizer: Any) -> dict | None:
    """The tokenizer as loaded, in tokenizer.json's form; None for a slow (Python) tokenizer.

    Not tokenizer.json as saved: transformers may rebuild parts of it for a model type (Qwen2's class
    sets its own pre-tokenizer), and training used what was loaded.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return json.loads(backend.to_str()) if backend is not None else None


def _pre_label(pre: dict | None, folder: Path) -> str:
    """llama.cpp's name for this pre-tokenizer: it re-implements each one it knows, by name."""
    steps = (pre or {}).get("pretokenizers", [pre]) if (pre or {}).get("type") == "Sequence" else [pre]
    kinds = [step.get("type") if step else None for step in steps]
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits") and steps[1].get("use_regex", True):
        return "smollm"
    if kinds == ["Split", "ByteLevel"] and not steps[1].get("use_regex", True):
        label = _SPLIT_LABELS.get(steps[0].get("pattern", {}).get("Regex"))
        if label:
            return label
    raise GGUFError(
        f"the tokenizer in {folder} splits text in a way llama.cpp has no name for: its GGUF would "
        "tokenise differently from training, so docpipe does not write it"
    )
