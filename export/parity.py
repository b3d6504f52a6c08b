"""The parity gate: does a GGUF in llama.cpp behave like the trained model in transformers?

Two checks, per exported file:
- tokens: probe strings (ASCII, digits, whitespace runs, Unicode, the special tokens) and the chat
  prompts, as Ollama will hand them to llama.cpp, must give the token ids the model was trained on;
- logits: on chats from the held-out set, teacher-forced, llama.cpp's next-token distribution at
  every position is compared with the trained model's (base + adapter, unmerged, float32): top-1
  agreement and the mean KL divergence KL(trained || gguf).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROBES = (
    "The pump runs at 40 litres per minute (see p. 3).",
    "In 2024, 12,345.678 units; phone +44 20 7946 0958.",
    "  two leading spaces, a\ttab, trailing spaces   ",
    "line one\nline two\n\n\nafter blank lines\r\nwindows line",
    "Ünïcödé: café, naïve, Straße, Ελληνικά, русский, 中文字符, 日本語, 한국어, emoji 🙂🚀, ligature ﬁ, e\u0301",
    "code: def f(x): return {'a': [1, 2]}  # comment",
    "    indented\n\tand tabbed",
)


@dataclass(frozen=True)
class Reference:
    """What the trained model does, computed once and compared with each exported file."""

    probes: list[tuple[str, list[int]]]  # (text, ids the HF tokenizer gives, special tokens added as it adds them)
    prompts: list[tuple[str, list[int]]]  # (chat prompt as Ollama renders it, ids training gave the same prompt)
    chats: list[list[int]]  # full held-out conversations, token ids
    logits: list[Any]  # float32 [positions, vocab] per chat
    notes: list[str]  # known differences the probes step around, for parity.json


def reference(model: Any, tokenizer: Any, conversations: list[list[dict]], *, runtime_bos: str, max_tokens: int) -> Reference:
    """Token ids and logits of the trained model on the probes and the held-out `conversations`."""
    import torch

    specials = " ".join(t for t in tokenizer.all_special_tokens)
    texts, notes = [*PROBES, f"{specials} between {specials}"], []
    if _normalizer(tokenizer) == "NFC":
        # llama.cpp does not run a BPE tokenizer's Unicode normaliser (Qwen2's is NFC): text not already in
        # NFC tokenises differently there, whatever docpipe writes. Most text is NFC; the probes are made so.
        texts = [unicodedata.normalize("NFC", text) for text in texts]
        notes.append(
            "the tokenizer normalises to NFC and llama.cpp does not: input not in NFC (e.g. a decomposed "
            "'e\u0301') tokenises differently in llama.cpp and Ollama"
        )
    probes = [(text, tokenizer(text)["input_ids"]) for text in texts]
    prompts, chats, logits = [], [], []
    for messages in conversations:
        prompt = messages[:-1] if messages[-1]["role"] == "assistant" else messages
        text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        if runtime_bos and text.startswith(runtime_bos):
            text = text[len(runtime_bos) :]  # Ollama's template leaves BOS to the tokenizer (export.ollama_template)
        prompts.append((text, _ids(tokenizer, prompt, add_generation_prompt=True)))
        chats.append(_ids(tokenizer, messages, add_generation_prompt=False)[:max_tokens])
    with torch.inference_mode():
        for ids in chats:
            logits.append(model(torch.tensor([ids])).logits[0].float().numpy())
    return Reference(probes, prompts, chats, logits, notes)


def _normalizer(tokenizer: Any) -> str | None:
    from docpipe.runtime.gguf_vocab import tokenizer_spec

    return ((tokenizer_spec(tokenizer) or {}).get("normalizer") or {}).get("type")


def _ids(tokenizer: Any, messages: list[dict], *, add_generation_prompt: bool) -> list[int]:
    return list(tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=add_generation_prompt, return_dict=False))


def compare(gguf: Path, ref: Reference, *, threads: int) -> dict[str, Any]:
    """Token mismatches, top-1 agreement and KL of `gguf` against the reference."""
    import llama_cpp
    import numpy as np

    from docpipe.runtime.llama import quiet_llama_logs

    quiet_llama_logs()  # a probe that starts with BOS would make llama.cpp warn about it on every file
    longest = max((len(ids) for ids in ref.chats), default=1)
    llm = llama_cpp.Llama(
        str(gguf),
        n_ctx=max(longest, 64),
        n_batch=max(longest, 64),
        n_ubatch=max(longest, 64),
        logits_all=True,
        n_threads=threads,
        verbose=False,
    )
    try:
        mismatches = [
            _mismatch(text, want, llm.tokenize(text.encode(), add_bos=True, special=True)) for text, want in [*ref.probes, *ref.prompts]
        ]
        top1, kls = [], []
        for ids, expected in zip(ref.chats, ref.logits):
            llm.reset()
            llm.eval(ids)
            got = np.asarray(llm.scores[: len(ids)], dtype=np.float64)
            want = expected.astype(np.float64)
            vocab = min(got.shape[1], want.shape[1])  # HF may pad its embedding rows
            got, want = got[:, :vocab], want[:, :vocab]
            top1.extend(got.argmax(axis=1) == want.argmax(axis=1))
            log_p, log_q = _log_softmax(want), _log_softmax(got)
            kls.extend((np.exp(log_p) * (log_p - log_q)).sum(axis=1))
    finally:
        llm.close()
    return {
        "token_mismatches": [m for m in mismatches if m],
        "positions": len(top1),
        "top1_agreement": round(float(np.mean(top1)), 4) if top1 else None,
        "mean_kl": float(np.mean(kls)) if kls else None,
        "max_kl": float(np.max(kls)) if kls else None,
    }


def _log_softmax(logits: Any) -> Any:
    import numpy as np

    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _mismatch(text: str, want: list[int], got: list[int]) -> str | None:
    """None when equal, else one line naming the probe and where the ids part."""
    if list(got) == list(want):
        return None
    at = next((i for i, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got)))
    return (
        f"{text[:40]!r}: ids differ at position {at} (trained {want[at : at + 3]}, gguf {list(got)[at : at + 3]}; "
        f"{len(want)} vs {len(got)} tokens)"
    )
