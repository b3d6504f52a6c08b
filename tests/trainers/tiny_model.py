"""A tiny chat model built from nothing in a second: a byte-level BPE tokenizer trained on the
fly with its family's special tokens and chat template, and a randomly initialised 2-layer
model. Real enough for every backend to train, save and reload it, and for export to write it
as a GGUF that llama.cpp runs. Families: llama and qwen2 (ChatML), gemma3 (Gemma's turns, BOS)."""

from __future__ import annotations

from pathlib import Path

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
GEMMA_SPECIAL = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
_TEXT = (
    "You answer questions about the user's documents. Answer only from those documents, briefly, and end with the "
    "source on its own line. The documents do not say. What does the guide say about the pump? The pump runs at "
    "40 litres per minute. Source: guide.pdf, p. 3. When was the bridge opened? It opened in 1932. "
    "system user assistant 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ .,;:!?'\"()-"
)


def build_tiny_model(
    folder: Path, *, vocab_size: int = 512, hidden: int = 64, layers: int = 2, family: str = "llama", init_std: float = 0.02
) -> Path:
    """Write a loadable HF model folder (config, safetensors, tokenizer, chat template) into `folder`.

    `init_std` above the usual 0.02 gives attention that depends on positions and content, so a wrong
    rotary layout changes the output (at 0.02 attention is near uniform and such bugs stay hidden).
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import (
        Gemma3ForCausalLM,
        Gemma3TextConfig,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    from docpipe.runtime.pretrained import GEMMA3_CHAT_TEMPLATE

    gemma = family == "gemma3"
    folder.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=GEMMA_SPECIAL if gemma else SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator([_TEXT] * 20, trainer=trainer)
    if gemma:  # like Gemma's own tokenizer, it adds <bos> to plain text; its template writes <bos> itself
        bpe.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 2)])
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=bpe, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
        )
        tokenizer.chat_template = GEMMA3_CHAT_TEMPLATE
    else:
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=bpe, bos_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None
        )
        tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(folder)

    torch.manual_seed(0)
    shape = dict(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        initializer_range=init_std,
    )
    if gemma:
        end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
        config = Gemma3TextConfig(
            **{**shape, "num_key_value_heads": 1, "eos_token_id": [tokenizer.eos_token_id, end_of_turn]},
            head_dim=16,
            query_pre_attn_scalar=16,
            sliding_window=512,
        )
        model = Gemma3ForCausalLM(config)
    elif family == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**shape))
    else:
        model = LlamaForCausalLM(LlamaConfig(**shape))
    model.to(torch.float32).save_pretrained(folder)
    return folder


def tiny_dataset(folder: Path, pairs: int = 24) -> Path:
    """A `docpipe generate`-shaped dataset folder (train/eval/dpo.jsonl) about made-up facts."""
    from docpipe.contracts import Citation, PreferencePair, TrainingRecord
    from docpipe.runtime.chat_format import render_answer, to_messages
    from docpipe.store import write_jsonl

    folder.mkdir(parents=True, exist_ok=True)

    def record(i: int) -> TrainingRecord:
        question, fact = f"What is the setting of pump {i}?", f"Pump {i} runs at {10 + i} litres per minute."
        citation = Citation(path="guide.pdf", doc_id="guide", page=1 + i % 5, quote=fact, start=0, end=len(fact))
        return TrainingRecord(
            id=f"p{i}",
            question=question,
            answer=fact,
            citation=citation,
            chunk_id=f"c{i}",
            tier="structured",
            producer="test",
            messages=to_messages(question, render_answer(fact, citation)),
        )

    train = [record(i) for i in range(pairs)]
    held_out = [record(i) for i in range(pairs, pairs + max(4, pairs // 4))]
    dpo = [
        PreferencePair(
            id=r.id,
            prompt=r.messages[:2],
            chosen=r.messages[2:],
            rejected_kind="wrong source",
            rejected=[{"role": "assistant", "content": "It runs fast.\n\nSource: other.pdf, p. 9"}],
        )
        for r in train
    ]
    for name, rows in (("train", train), ("eval", held_out), ("dpo", dpo)):
        write_jsonl(folder / f"{name}.jsonl", rows)
    return folder
