"""A tiny llama-family chat model built from nothing in a second: a byte-level BPE tokenizer
trained on the fly with ChatML special tokens and template, and a randomly initialised
2-layer model. Real enough for every backend to train, save and reload it."""

from __future__ import annotations

import json
from pathlib import Path

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_TEXT = (
    "You answer questions about the user's documents. Answer only from those documents, briefly, and end with the "
    "source on its own line. The documents do not say. What does the guide say about the pump? The pump runs at "
    "40 litres per minute. Source: guide.pdf, p. 3. When was the bridge opened? It opened in 1932. "
    "system user assistant 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ .,;:!?'\"()-"
)


def build_tiny_model(folder: Path, *, vocab_size: int = 512, hidden: int = 64, layers: int = 2) -> Path:
    """Write a loadable HF model folder (config, safetensors, tokenizer, chat template) into `folder`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator([_TEXT] * 20, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=None, eos_token="<|im_end|>",
                                        pad_token="<|endoftext|>", unk_token=None)
    tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(folder)

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=1024, tie_word_embeddings=True,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
    LlamaForCausalLM(config).to(torch.float32).save_pretrained(folder)
    return folder


def tiny_dataset(folder: Path, pairs: int = 24) -> Path:
    """A `docpipe generate`-shaped dataset folder (train/eval/dpo.jsonl) about made-up facts."""
    from docpipe.qa.formats import SYSTEM_PROMPT

    folder.mkdir(parents=True, exist_ok=True)

    def record(i: int) -> dict:
        question = f"What is the setting of pump {i}?"
        answer = f"Pump {i} runs at {10 + i} litres per minute.\n\nSource: guide.pdf, p. {1 + i % 5}"
        return {"id": f"p{i}", "messages": [{"role": "system", "content": SYSTEM_PROMPT},
                                            {"role": "user", "content": question},
                                            {"role": "assistant", "content": answer}]}

    train = [record(i) for i in range(pairs)]
    held_out = [record(i) for i in range(pairs, pairs + max(4, pairs // 4))]
    dpo = [{"id": r["id"], "prompt": r["messages"][:2], "chosen": r["messages"][2:],
            "rejected": [{"role": "assistant", "content": "It runs fast.\n\nSource: other.pdf, p. 9"}]} for r in train]
    for name, rows in (("train", train), ("eval", held_out), ("dpo", dpo)):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder
